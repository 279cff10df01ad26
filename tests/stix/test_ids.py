"""Deterministic ids: equal to the ones stix2 and pycti compute, stable, and distinct per value."""

import pycti
import pytest
import stix2
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from malbeacon_connector.stix.ids import identity_id, indicator_id, observable_id, relationship_id
from malbeacon_connector.stix.patterns import value_pattern

OBSERVABLE_CLASSES = {
    "ipv4-addr": stix2.IPv4Address,
    "ipv6-addr": stix2.IPv6Address,
    "domain-name": stix2.DomainName,
    "url": stix2.URL,
}
STIX_REFS = st.builds(
    lambda stix_type, uuid: f"{stix_type}--{uuid}",
    st.sampled_from(["ipv4-addr", "domain-name", "indicator", "infrastructure", "identity"]),
    st.uuids(),
)


def stix2_id(stix_type: str, value: str) -> str:
    """The id stix2 gives an observable of this value; skips values stix2 refuses."""
    try:
        observable = OBSERVABLE_CLASSES[stix_type](value=value)
    except stix2.exceptions.STIXError:
        assume(False)
    return observable.id


@pytest.mark.parametrize(
    ("stix_type", "value"),
    [
        ("ipv4-addr", "203.0.113.7"),
        ("ipv4-addr", "198.51.100.0/24"),
        ("ipv6-addr", "2001:db8::1"),
        ("domain-name", "example.com"),
        ("domain-name", "bücher.example"),
        ("url", "http://example.com/abc/hear.php?a=1&b=2"),
        ("url", 'http://example.com/"quoted"\\back\nline\u2028\x7f\x01'),
    ],
)
def test_observable_id_equals_stix2(stix_type, value):
    """The observable id is the one stix2 derives from `value`."""
    assert observable_id(stix_type, value) == stix2_id(stix_type, value)


@settings(deadline=None)
@given(st.sampled_from(["domain-name", "url"]), st.text())
def test_observable_id_equals_stix2_for_any_text(stix_type, value):
    """For any text stix2 accepts as a value, both compute the same id."""
    assert observable_id(stix_type, value) == stix2_id(stix_type, value)


@settings(deadline=None)
@given(st.sampled_from(["ipv4-addr", "ipv6-addr"]), st.ip_addresses().map(str))
def test_observable_id_equals_stix2_for_ip_addresses(stix_type, value):
    """IP observables get the id stix2 derives, whatever the address."""
    assert observable_id(stix_type, value) == stix2_id(stix_type, value)


@pytest.mark.parametrize(
    ("name", "identity_class"),
    [("Malbeacon", "organization"), ("  MalBeacon ", "Organization"), ("Ünïcödé \"'\\", "individual")],
)
def test_identity_id_equals_pycti(name, identity_class):
    """The identity id is pycti's, including its lower-casing and stripping."""
    assert identity_id(name, identity_class) == pycti.Identity.generate_id(name, identity_class)


@settings(deadline=None)
@given(st.text(), st.sampled_from(["organization", "individual", "Class", "system"]))
def test_identity_id_equals_pycti_for_any_name(name, identity_class):
    """For any name, the identity id is pycti's."""
    assert identity_id(name, identity_class) == pycti.Identity.generate_id(name, identity_class)


@settings(deadline=None)
@given(st.sampled_from(["ipv4-addr", "ipv6-addr", "domain-name", "url"]), st.text())
def test_indicator_id_equals_pycti_for_value_patterns(stix_type, value):
    """For the pattern of any value, the indicator id is pycti's."""
    pattern = value_pattern(stix_type, value)
    assert indicator_id(pattern) == pycti.Indicator.generate_id(pattern)


def test_indicator_id_ignores_surrounding_whitespace_like_pycti():
    """pycti strips the pattern before hashing; so does indicator_id."""
    pattern = value_pattern("domain-name", "example.com")
    assert indicator_id(f"  {pattern}\n") == indicator_id(pattern) == pycti.Indicator.generate_id(f" {pattern} ")


@settings(deadline=None)
@given(st.sampled_from(["based-on", "related-to", "resolves-to", "communicates-with"]), STIX_REFS, STIX_REFS)
def test_relationship_id_equals_pycti(relationship_type, source_ref, target_ref):
    """A relationship without times has pycti's id."""
    expected = pycti.StixCoreRelationship.generate_id(relationship_type, source_ref, target_ref)
    assert relationship_id(relationship_type, source_ref, target_ref) == expected


@given(st.sampled_from(list(OBSERVABLE_CLASSES)), st.text(), st.text())
def test_observable_id_is_deterministic_and_distinct_per_value(stix_type, value, other):
    """The same value always gives the same id; a different value a different id."""
    assert observable_id(stix_type, value) == observable_id(stix_type, value)
    assert (observable_id(stix_type, value) == observable_id(stix_type, other)) == (value == other)
    assert observable_id(stix_type, value).startswith(f"{stix_type}--")


def test_relationship_id_depends_on_direction_and_type():
    """Swapping source and target, or changing the type, changes the id."""
    source, target = observable_id("ipv4-addr", "203.0.113.7"), observable_id("domain-name", "example.com")
    ids = {
        relationship_id("related-to", source, target),
        relationship_id("related-to", target, source),
        relationship_id("based-on", source, target),
    }
    assert len(ids) == 3
    assert relationship_id("related-to", source, target) == relationship_id("related-to", source, target)


def test_indicator_ids_differ_per_value():
    """Patterns of different values give different indicator ids."""
    assert indicator_id(value_pattern("domain-name", "a.example")) != indicator_id(
        value_pattern("domain-name", "b.example")
    )
