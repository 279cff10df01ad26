"""The converter's `indicates`: an indicator whose value is a C2 panel indicates that panel's infrastructure."""

from dataclasses import replace
from datetime import UTC, datetime

from malbeacon_connector.malbeacon.records import parse_records
from malbeacon_connector.pipeline import entity_for_value
from malbeacon_connector.stix.builder import AUTHOR_ID
from malbeacon_connector.stix.bundle import make_bundle, merge_objects
from malbeacon_connector.stix.convert import convert
from malbeacon_connector.stix.ids import indicator_id, infrastructure_id, relationship_id
from malbeacon_connector.stix.models import ConversionOptions, EnrichedEntity, Findings, Lookup
from malbeacon_connector.tlp import MARKING_DEFINITIONS, marking_id
from stix_checks import assert_valid_bundle, objects_of

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PATTERN = "[ipv4-addr:value = '203.0.113.7' OR domain-name:value = 'panel.example.net']"
INDICATOR = {
    "type": "indicator",
    "spec_version": "2.1",
    "id": indicator_id(PATTERN),
    "created": "2026-01-01T00:00:00.000Z",
    "modified": "2026-01-01T00:00:00.000Z",
    "name": "Two C2",
    "pattern": PATTERN,
    "pattern_type": "stix",
    "valid_from": "2026-01-01T00:00:00.000Z",
}


def row(c2: str, c2domain: str = "NA", actorip: str = "198.51.100.23") -> dict:
    return {"tstamp": "2021-03-04 08:12:45", "actorip": actorip, "c2": c2, "c2domain": c2domain, "tags": "formbook"}


def value_of_indicator(value: str, entity_type: str, tlp: str = "TLP:CLEAR") -> EnrichedEntity:
    return replace(entity_for_value(value, entity_type, tlp), indicator_id=INDICATOR["id"])


def findings(entity: EnrichedEntity, rows: list[dict], endpoint: str = "c2") -> Findings:
    return Findings(entity, [Lookup(endpoint, parse_records(rows).records)])


def indicates(objects: list[dict]) -> list[dict]:
    return [r for r in objects_of(objects, "relationship") if r["relationship_type"] == "indicates"]


def test_the_indicator_of_a_c2_value_indicates_its_panel_with_a_deterministic_id_the_author_and_its_tlp():
    entity = value_of_indicator("203.0.113.7", "IPv4-Addr", "TLP:AMBER")
    objects = convert([findings(entity, [row("http://203.0.113.7/gate.php")])], ConversionOptions(), NOW).objects
    (panel,) = objects_of(objects, "infrastructure")
    assert panel["id"] == infrastructure_id("C2 panel 203.0.113.7")
    (relationship,) = indicates(objects)
    assert relationship["id"] == relationship_id("indicates", INDICATOR["id"], panel["id"])
    assert (relationship["source_ref"], relationship["target_ref"]) == (INDICATOR["id"], panel["id"])
    assert relationship["created_by_ref"] == AUTHOR_ID
    assert relationship["object_marking_refs"] == [marking_id("TLP:AMBER")]
    assert relationship["description"] == "A value of this indicator is this C2 panel, tracked by Malbeacon."
    marked = {**INDICATOR, "object_marking_refs": [marking_id("TLP:AMBER")]}
    assert_valid_bundle(make_bundle(merge_objects([MARKING_DEFINITIONS["TLP:AMBER"], marked], objects)))


def test_each_value_that_is_a_c2_gives_one_indicates_to_its_own_panel():
    ip, domain = value_of_indicator("203.0.113.7", "IPv4-Addr"), value_of_indicator("panel.example.net", "Domain-Name")
    rows = {
        "ip": [row("http://203.0.113.7/a.php")],
        "domain": [row("https://panel.example.net/b", "panel.example.net")],
    }
    enrichments = [findings(ip, rows["ip"]), findings(domain, rows["domain"])]
    objects = convert(enrichments, ConversionOptions(), NOW).objects
    panels = {p["name"]: p["id"] for p in objects_of(objects, "infrastructure")}
    assert {r["target_ref"] for r in indicates(objects)} == set(panels.values())
    assert set(panels) == {"C2 panel 203.0.113.7", "C2 panel panel.example.net"}
    assert {r["source_ref"] for r in indicates(objects)} == {INDICATOR["id"]}


def test_nothing_is_indicated_without_infrastructures_when_the_value_is_an_actor_or_of_no_indicator():
    rows = [row("http://203.0.113.7/gate.php")]
    c2 = value_of_indicator("203.0.113.7", "IPv4-Addr")
    without_panels = convert([findings(c2, rows)], ConversionOptions(infrastructure=False), NOW).objects
    assert indicates(without_panels) == [] and objects_of(without_panels, "indicator")  # the actors stay
    actor = value_of_indicator("198.51.100.23", "IPv4-Addr")
    as_actor = convert([findings(actor, rows, endpoint="actorip")], ConversionOptions(), NOW).objects
    assert objects_of(as_actor, "infrastructure") and indicates(as_actor) == []
    observable = entity_for_value("203.0.113.7", "IPv4-Addr", "TLP:CLEAR")
    as_observable = convert([findings(observable, rows)], ConversionOptions(), NOW).objects
    with_indicator = convert([findings(c2, rows)], ConversionOptions(), NOW).objects
    assert indicates(as_observable) == []
    assert [o for o in with_indicator if o not in indicates(with_indicator)] == as_observable  # nothing else differs
