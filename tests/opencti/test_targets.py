"""What a message asks to look up: an indicator's observable values, wherever the platform put them, and
which of them are looked up."""

import pytest
from stubs import connector_settings, indicator_message

from malbeacon_connector.opencti.targets import (
    OCTI_EXTENSION,
    NotLookedUp,
    indicator_values,
    read_targets,
    target_name,
)
from malbeacon_connector.pipeline import LookupOutcome
from malbeacon_connector.stix.ids import observable_id
from malbeacon_connector.tlp import marking_id

C2_IP = ("IPv4-Addr", "203.0.113.7")
SCOPE = "IPv4-Addr,IPv6-Addr,Domain-Name,Indicator"


def targets_of(data: dict, scope: str = SCOPE, tlp: str = "TLP:CLEAR", **malbeacon: object):
    entity, stix_entity = data["enrichment_entity"], data["stix_entity"]
    settings = connector_settings(scope=scope, **malbeacon)
    return read_targets("Indicator", target_name(entity, stix_entity), stix_entity, entity, tlp, settings)


def test_pycti_s_reading_of_an_indicator_holds_its_values_in_both_forms():
    data = indicator_message(C2_IP)
    expected = [C2_IP]
    assert indicator_values(data["stix_entity"], data["enrichment_entity"]) == expected
    assert indicator_values({}, data["enrichment_entity"]) == expected  # the API reading alone
    assert indicator_values(data["stix_entity"], {}) == expected  # pycti's STIX form alone


def test_the_platform_s_stix_export_holds_them_in_its_opencti_extension():
    """A playbook's bundle: pycti's reading through `stixCoreObject` holds no values, the bundle's export does."""
    extension = {"main_observable_type": "Domain-Name", "observable_values": [{"value": "panel.example.net"}]}
    stix_entity = {"type": "indicator", "id": "indicator--x", "extensions": {OCTI_EXTENSION: extension}}
    assert indicator_values(stix_entity, {"entity_type": "Indicator"}) == [("Domain-Name", "panel.example.net")]


def test_the_first_place_holding_readable_values_wins_and_entries_without_a_value_are_skipped():
    stix_entity = {"x_opencti_observable_values": [{"type": "StixFile", "value": None, "hashes": [{"x": 1}]}, 7]}
    entity = {"x_opencti_observable_values": [{"type": "Url", "value": " https://panel.example.net/a "}]}
    assert indicator_values(stix_entity, entity) == [("Url", "https://panel.example.net/a")]
    assert indicator_values({"x_opencti_observable_values": "not a list"}, {}) == []


@pytest.mark.parametrize(
    ("pattern_type", "expected"),
    [("sigma", "has a sigma pattern type"), ("", "has a missing pattern type"), ("yara", "has a yara pattern")],
)
def test_an_indicator_of_another_pattern_type_is_not_looked_up(pattern_type, expected):
    with pytest.raises(NotLookedUp) as refusal:
        targets_of(indicator_message(C2_IP, pattern_type=pattern_type))
    assert str(refusal.value).startswith(f"Indicator 'Known C2' {expected}")
    assert str(refusal.value).endswith(
        "only the observable values of STIX patterns are looked up; nothing was asked to Malbeacon"
    )


def test_the_pattern_type_is_case_insensitive():
    assert len(targets_of(indicator_message(C2_IP, pattern_type="STIX")).entities) == 1


def test_an_indicator_without_values_is_not_looked_up():
    data = indicator_message(C2_IP)
    for entity in (data["stix_entity"], data["enrichment_entity"]):
        entity["x_opencti_observable_values"] = []
    with pytest.raises(NotLookedUp, match=r"has no value Malbeacon can be asked for \(it holds no observable value\)"):
        targets_of(data)


def test_values_of_types_not_in_scope_or_unknown_or_invalid_are_left_out_and_said():
    data = indicator_message(
        ("Url", "https://panel.example.net/gate"),
        ("Email-Addr", "ops@example.com"),
        ("Domain-Name", "not a domain!"),
    )
    with pytest.raises(NotLookedUp) as refusal:
        targets_of(data)
    assert str(refusal.value) == (
        "Indicator 'Known C2' has no value Malbeacon can be asked for ('https://panel.example.net/gate' (Url): not in "
        "CONNECTOR_SCOPE, 'ops@example.com' (Email-Addr): a type Malbeacon is not asked for, 'not a domain!' "
        "(Domain-Name): 'not a domain!' is not a domain name); nothing was asked to Malbeacon"
    )
    (url,) = targets_of(data, scope=f"{SCOPE},Url").entities  # in scope: looked up
    assert url.key == ("Url", "https://panel.example.net/gate")


def test_several_values_each_become_the_observable_of_that_value_with_the_indicator_s_tlp():
    data = indicator_message(C2_IP, ("Domain-Name", "Panel.Example.NET."), ("Domain-Name", "panel.example.net"))
    targets = targets_of(data, tlp="TLP:AMBER")
    assert [entity.key for entity in targets.entities] == [C2_IP, ("Domain-Name", "panel.example.net")]
    for entity in targets.entities:
        stix_type = entity.stix_object["type"]
        assert entity.stix_id == observable_id(stix_type, entity.value)  # the platform merges it with the observable
        assert entity.stix_object["object_marking_refs"] == [marking_id("TLP:AMBER")]
        assert entity.tlp == "TLP:AMBER" and entity.indicator_id == data["stix_entity"]["id"]


def test_a_value_without_a_type_has_the_indicator_s_main_observable_type():
    data = indicator_message(("Domain-Name", "panel.example.net"))
    for entity in (data["stix_entity"], data["enrichment_entity"]):
        entity["x_opencti_observable_values"] = [{"value": "panel.example.net"}]
    (entity,) = targets_of(data).entities
    assert entity.key == ("Domain-Name", "panel.example.net")


def test_the_summary_names_the_indicator_what_was_left_out_and_what_it_indicates():
    data = indicator_message(C2_IP, *(("Url", f"https://x.example/{n}") for n in range(6)))
    targets = targets_of(data, create_infrastructure=False)
    outcomes = [LookupOutcome(entity) for entity in targets.entities]
    summary = targets.summary(outcomes, [{"type": "identity", "id": "identity--x"}])
    assert summary.startswith("Indicator 'Known C2': 203.0.113.7 (IPv4-Addr): not found in Malbeacon [0 API calls]; ")
    assert "'https://x.example/4' (Url): not in CONNECTOR_SCOPE and 1 more; " in summary  # the first five named
    assert "https://x.example/5" not in summary
    assert summary.endswith(
        "; indicates nothing: no infrastructure is made (MALBEACON_CREATE_INFRASTRUCTURE=false); 1 object sent"
    )
    assert "indicates" not in targets.summary(outcomes)  # nothing sent: nothing said of it


def test_the_indicator_goes_out_without_confidence_before_the_new_objects():
    data = indicator_message(C2_IP)
    sent = targets_of(data).new_objects([{"id": "x"}])
    assert sent[0]["id"] == data["stix_entity"]["id"] and "confidence" not in sent[0] and sent[1:] == [{"id": "x"}]
    assert "confidence" in data["stix_entity"]  # the caller's copy is untouched


def test_an_observable_is_its_own_target_as_before():
    settings = connector_settings()
    stix_entity = {"type": "domain-name", "id": observable_id("domain-name", "panel.example.net")}
    (entity,) = read_targets("Domain-Name", "Panel.Example.net", stix_entity, {}, "TLP:GREEN", settings).entities
    assert (entity.stix_object, entity.value, entity.tlp, entity.indicator_id) == (
        stix_entity,
        "panel.example.net",
        "TLP:GREEN",
        None,
    )
    with pytest.raises(NotLookedUp, match=r"^cannot be looked up in Malbeacon: 'x y' is not a domain name$"):
        read_targets("Domain-Name", "x y", stix_entity, {}, "TLP:CLEAR", settings)


@pytest.mark.parametrize(
    ("entity", "stix_entity", "expected"),
    [
        ({"observable_value": "203.0.113.7", "name": "n"}, {}, "203.0.113.7"),
        ({}, {"value": "panel.example.net"}, "panel.example.net"),
        ({"name": "Known C2"}, {"pattern": "[ipv4-addr:value = '203.0.113.7']"}, "Known C2"),
        ({}, {"pattern": "[ipv4-addr:value = '203.0.113.7']"}, "[ipv4-addr:value = '203.0.113.7']"),
        ({}, {}, ""),
    ],
)
def test_the_name_of_an_entity_in_messages(entity, stix_entity, expected):
    assert target_name(entity, stix_entity) == expected
