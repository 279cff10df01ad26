"""The fake platform's indicators read and export like the platform's (so that passing against them means something)."""

from types import SimpleNamespace

import pytest
from pycti import Indicator

from .fake_indicators import OCTI_EXT, pattern_observable_values
from .fake_opencti import FakeOpenCTI, Operation


@pytest.fixture
def platform():
    """A fake platform without a broker."""
    broker = SimpleNamespace(host="127.0.0.1", port=0, tls_port=0, user="u", password="p", vhost="/")
    with FakeOpenCTI(broker) as fake:
        yield fake


def test_the_values_of_a_pattern_are_read_as_the_platform_does():
    pattern = "[ipv4-addr:value = '203.0.113.7' OR url:value = 'http://x.example/a'] AND [file:hashes.MD5 = 'ab']"
    assert pattern_observable_values(pattern) == [
        {"type": "IPv4-Addr", "value": "203.0.113.7", "hashes": None},
        {"type": "Url", "value": "http://x.example/a", "hashes": None},
        {"type": "StixFile", "value": None, "hashes": [{"algorithm": "MD5", "hash": "ab"}]},
    ]
    assert pattern_observable_values("[network-traffic:dst_port = 4444]", api_shape=False) == [
        {"type": "Network-Traffic", "dst_port": "4444"}
    ]
    assert pattern_observable_values("title: not a STIX pattern") == []


def test_an_indicator_is_stored_with_its_values_and_exported_with_them_in_the_opencti_extension(platform):
    pattern = "[domain-name:value = 'panel.example.net']"
    standard_id = platform.add_indicator(pattern, ["TLP:AMBER"], name="Panel")
    assert standard_id == Indicator.generate_id(pattern)
    entity = platform.entity(standard_id)
    assert entity["entity_type"] == "Indicator" and entity["x_opencti_main_observable_type"] == "Domain-Name"
    assert entity["x_opencti_observable_values"] == [
        {"type": "Domain-Name", "value": "panel.example.net", "hashes": None}
    ]
    stix = platform.stix_entity(standard_id)
    assert "x_opencti_observable_values" not in stix and stix["pattern_type"] == "stix"
    extension = stix["extensions"][OCTI_EXT]
    assert extension["observable_values"] == [{"type": "Domain-Name", "value": "panel.example.net"}]
    assert extension["main_observable_type"] == "Domain-Name" and extension["type"] == "Indicator"
    assert [o["id"] for o in platform.stix_objects(standard_id)][1:] == stix["object_marking_refs"]


def test_other_pattern_types_have_no_values_and_pycti_s_generic_reading_asks_for_none(platform):
    sigma = platform.add_indicator("title: x", pattern_type="sigma")
    assert platform.entity(sigma)["x_opencti_observable_values"] == []
    stix_id = platform.add_indicator("[ipv4-addr:value = '203.0.113.7']")
    read = platform._gql_stixCoreObject({"id": stix_id}, Operation("query", None, "stixCoreObject", None))
    assert read is not None and "x_opencti_observable_values" not in read
    assert platform.entity(stix_id)["x_opencti_observable_values"]  # the stored entity keeps them
