"""The converter's core mapping (infrastructures off): actors, indicators, deterministic ids, TLP carried over."""

import json
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from malbeacon_connector.malbeacon.records import parse_records
from malbeacon_connector.pipeline import entity_for_value
from malbeacon_connector.stix.builder import AUTHOR_ID
from malbeacon_connector.stix.convert import convert
from malbeacon_connector.stix.enriched import SCO_EXTENSION
from malbeacon_connector.stix.ids import observable_id
from malbeacon_connector.stix.models import ConversionOptions, EnrichedEntity, Findings, Lookup
from malbeacon_connector.tlp import MARKING_DEFINITIONS, marking_id
from platform_rules import external_reference_id
from stix_checks import assert_valid_bundle, full_bundle, objects_of

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
C2 = "203.0.113.7"


def row(actorip: str = "NA", actorhostname: str = "NA", tstamp: str = "2020-10-22 09:04:40", tags: str = "NA") -> dict:
    return {"tstamp": tstamp, "actorip": actorip, "actorhostname": actorhostname, "tags": tags}


def conversion_for(
    rows: list[dict],
    *,
    tlp: str = "TLP:CLEAR",
    value: str = C2,
    entity_type: str = "IPv4-Addr",
    score: int = 50,
    now: datetime = NOW,
    options: ConversionOptions | None = None,
    endpoint: str = "c2",
) -> tuple[list[dict], dict]:
    """The objects converted from rows for one entity, and that entity's STIX form."""
    entity = entity_for_value(value, entity_type, tlp)
    options = options or ConversionOptions(score=score, infrastructure=False)
    objects = convert([enrichment(entity, rows, endpoint)], options, now).objects
    return objects, entity.stix_object


def enrichment(entity: EnrichedEntity, rows: list[dict], endpoint: str = "c2") -> Findings:
    return Findings(entity, [Lookup(endpoint, parse_records(rows).records)])


def by_value(objects: list[dict], stix_type: str) -> dict[str, dict]:
    return {stix_object["value"]: stix_object for stix_object in objects_of(objects, stix_type)}


def relationships(objects: list[dict], relationship_type: str) -> set[tuple[str, str]]:
    return {
        (rel["source_ref"], rel["target_ref"])
        for rel in objects_of(objects, "relationship")
        if rel["relationship_type"] == relationship_type
    }


def test_actor_ip_becomes_observable_indicator_based_on_and_link_to_the_enriched_c2():
    objects, entity = conversion_for([row("198.51.100.23", tags="agenttesla,stealer")])
    observable = by_value(objects, "ipv4-addr")["198.51.100.23"]
    (indicator,) = objects_of(objects, "indicator")
    assert indicator["pattern"] == "[ipv4-addr:value = '198.51.100.23']"
    assert indicator["x_opencti_main_observable_type"] == "IPv4-Addr"
    assert indicator["labels"] == ["agenttesla", "stealer"]
    assert observable["x_opencti_labels"] == ["agenttesla", "stealer"]
    assert relationships(objects, "based-on") == {(indicator["id"], observable["id"])}
    assert relationships(objects, "related-to") == {(observable["id"], entity["id"])}
    assert_valid_bundle(full_bundle(objects, entity))


def test_actor_host_name_resolves_to_the_ip_it_was_seen_with():
    objects, entity = conversion_for([row("2001:db8::12", "Vpn.Example.ORG.")])
    hostname = by_value(objects, "domain-name")["vpn.example.org"]
    ip = by_value(objects, "ipv6-addr")["2001:db8::12"]
    assert relationships(objects, "resolves-to") == {(hostname["id"], ip["id"])}
    assert {pattern["x_opencti_main_observable_type"] for pattern in objects_of(objects, "indicator")} == {
        "IPv6-Addr",
        "Domain-Name",
    }
    assert relationships(objects, "related-to") == {(hostname["id"], entity["id"]), (ip["id"], entity["id"])}
    assert_valid_bundle(full_bundle(objects, entity))


def test_same_input_gives_the_same_ids_at_any_time():
    rows = [row("198.51.100.23", "a.example.com"), row("192.0.2.1", "b.example.com")]
    first, _ = conversion_for(rows, now=NOW)
    again, _ = conversion_for(list(reversed(rows)), now=datetime(2027, 5, 5, tzinfo=UTC))
    assert {o["id"] for o in first} == {o["id"] for o in again}
    assert by_value(first, "ipv4-addr")["192.0.2.1"]["id"] == observable_id("ipv4-addr", "192.0.2.1")


def test_repeated_actors_give_each_object_once():
    rows = [row("198.51.100.23", "a.example.com")] * 50 + [row("198.51.100.23", "A.example.com.")] * 5
    objects, entity = conversion_for(rows)
    ids = [o["id"] for o in objects]
    assert len(ids) == len(set(ids))
    assert set(by_value(objects, "ipv4-addr")) == {"198.51.100.23", C2}
    assert len(objects_of(objects, "domain-name")) == 1
    assert len(objects_of(objects, "indicator")) == 2
    assert_valid_bundle(full_bundle(objects, entity))


def test_every_host_name_of_an_ip_is_kept_and_a_host_name_reached_via_two_ips_is_emitted_once():
    """The existing connector de-duplicated by IP only and dropped or duplicated host names."""
    rows = [
        row("198.51.100.23", "a.example.com"),
        row("198.51.100.23", "b.example.com"),
        row("192.0.2.9", "a.example.com"),
        row("NA", "only-name.example.net"),
    ]
    objects, _ = conversion_for(rows)
    names = by_value(objects, "domain-name")
    assert set(names) == {"a.example.com", "b.example.com", "only-name.example.net"}
    ips = by_value(objects, "ipv4-addr")
    assert relationships(objects, "resolves-to") == {
        (names["a.example.com"]["id"], ips["198.51.100.23"]["id"]),
        (names["b.example.com"]["id"], ips["198.51.100.23"]["id"]),
        (names["a.example.com"]["id"], ips["192.0.2.9"]["id"]),
    }


@pytest.mark.parametrize("tlp", ["TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED"])
def test_created_objects_carry_the_tlp_of_the_enriched_entity_and_its_definition(tlp):
    objects, entity = conversion_for([row("198.51.100.23", "a.example.com")], tlp=tlp)
    created = [o for o in objects if o["type"] not in ("marking-definition", "identity") and o["id"] != entity["id"]]
    assert created and all(o["object_marking_refs"] == [marking_id(tlp)] for o in created)
    assert MARKING_DEFINITIONS[tlp] in objects
    assert_valid_bundle(full_bundle(objects, entity))


def test_an_actor_seen_from_entities_of_different_tlp_gets_the_most_restrictive():
    green = entity_for_value("203.0.113.7", "IPv4-Addr", "TLP:GREEN")
    red = entity_for_value("panel.example.net", "Domain-Name", "TLP:RED")
    rows = [row("198.51.100.23")]
    objects = convert(
        [enrichment(green, rows), enrichment(red, rows)], ConversionOptions(infrastructure=False), NOW
    ).objects
    actor = by_value(objects, "ipv4-addr")["198.51.100.23"]
    assert actor["object_marking_refs"] == [marking_id("TLP:RED")]
    links = {
        rel["target_ref"]: rel["object_marking_refs"]
        for rel in objects_of(objects, "relationship")
        if rel["relationship_type"] == "related-to"
    }
    assert links == {green.stix_id: [marking_id("TLP:RED")], red.stix_id: [marking_id("TLP:RED")]}


def test_score_and_author_on_created_objects_and_no_confidence():
    objects, entity = conversion_for([row("198.51.100.23", "a.example.com")], score=87)
    (author,) = objects_of(objects, "identity")
    assert author["id"] == AUTHOR_ID and author["name"] == "Malbeacon" and author["identity_class"] == "organization"
    actors = [
        o for o in objects_of(objects, "ipv4-addr") + objects_of(objects, "domain-name") if o["id"] != entity["id"]
    ]
    assert len(actors) == 2
    for stix_object in actors:
        assert stix_object["x_opencti_score"] == 87
        assert stix_object["x_opencti_created_by_ref"] == AUTHOR_ID
    for stix_object in objects_of(objects, "indicator") + objects_of(objects, "relationship"):
        assert stix_object["created_by_ref"] == AUTHOR_ID
    assert [indicator["x_opencti_score"] for indicator in objects_of(objects, "indicator")] == [87, 87]
    assert not any("confidence" in stix_object for stix_object in objects)


@pytest.mark.parametrize(("score_before", "score_after"), [(12, 50), (None, 50), (80, 80)])
def test_the_enriched_observable_is_sent_once_with_a_malbeacon_reference_and_a_raised_score(score_before, score_after):
    """Known to Malbeacon: the score rises to the configured level, never falls (the old connector forced it)."""
    entity = entity_for_value(C2, "IPv4-Addr", "TLP:CLEAR")
    if score_before is not None:
        entity.stix_object["x_opencti_score"] = score_before
    objects = convert([enrichment(entity, [row("198.51.100.23", tags="formbook")])], ConversionOptions(), NOW).objects
    updated = [o for o in objects if o["id"] == entity.stix_id]
    assert len(updated) == 1
    extension = updated[0]["extensions"][SCO_EXTENSION]
    assert extension["score"] == score_after and "x_opencti_score" not in updated[0]
    assert extension["labels"] == ["formbook"]
    (reference,) = extension["external_references"]
    assert reference == {
        "source_name": "Malbeacon",
        "url": "https://malbeacon.com/illuminate#203.0.113.7",
        "external_id": "203.0.113.7",
        "description": "Known to Malbeacon: 1 beacon record(s), from 2020-10-22T09:04:40.000Z to "
        "2020-10-22T09:04:40.000Z; lookups: c2/c2.",
    }
    assert "extensions" not in entity.stix_object  # the caller's object is not modified


def test_a_second_enrichment_replaces_the_malbeacon_reference_and_keeps_older_labels():
    objects, _ = conversion_for([row("198.51.100.23", tags="agenttesla")], options=ConversionOptions())
    updated = next(o for o in objects if o["type"] == "ipv4-addr" and o["value"] == C2)
    entity = EnrichedEntity(updated, "IPv4-Addr", C2)
    again = convert([enrichment(entity, [row("192.0.2.1", tags="remcos")])], ConversionOptions(), NOW).objects
    extension = next(o for o in again if o["id"] == entity.stix_id)["extensions"][SCO_EXTENSION]
    assert len(extension["external_references"]) == 1
    assert extension["labels"] == ["agenttesla", "remcos"]


def test_nothing_is_produced_when_malbeacon_has_no_records():
    objects, _ = conversion_for([])
    assert objects == []


def test_records_without_a_valid_actor_still_mark_the_value_as_known_but_create_no_actor():
    objects, entity = conversion_for([row("NA", "localhost"), row("not-an-ip", "_x.example.com")])
    assert [o["id"] for o in objects if o["type"] in ("ipv4-addr", "domain-name", "indicator")] == [entity["id"]]
    assert_valid_bundle(full_bundle(objects, entity))


def test_an_enriched_value_that_is_also_an_actor_gets_no_link_to_itself():
    objects, entity = conversion_for(
        [row("192.0.2.1", "panel.example.net")], value="panel.example.net", entity_type="Domain-Name"
    )
    assert all(rel["source_ref"] != rel["target_ref"] for rel in objects_of(objects, "relationship"))
    assert [o["id"] for o in objects].count(entity["id"]) == 1
    assert_valid_bundle(full_bundle(objects, entity))


def test_sample_data_bundle_is_valid_and_counts_match(simulator):
    rows = simulator.data["c2"]["203.0.113.7"]
    objects, entity = conversion_for(rows, tlp="TLP:AMBER+STRICT")
    assert set(by_value(objects, "ipv4-addr")) == {"198.51.100.23", "192.0.2.44", C2}
    assert set(by_value(objects, "ipv6-addr")) == {"2001:db8:beef::12"}
    assert set(by_value(objects, "domain-name")) == {"dsl-198-51-100-23.isp.example.com", "vpn-exit.example.org"}
    assert_valid_bundle(full_bundle(objects, entity))


def test_the_portal_link_is_on_the_author_only_and_the_enriched_value_has_its_own():
    """The old connector attached the same portal link to every object."""
    objects, entity = conversion_for([row("198.51.100.23", "a.example.com")], options=ConversionOptions())
    with_link = [o["id"] for o in objects if "malbeacon.com" in str(o.get("external_references", ""))]
    assert with_link == [AUTHOR_ID]
    with_any_link = [o["id"] for o in objects if "malbeacon.com" in json.dumps(o)]
    assert with_any_link == [AUTHOR_ID, entity["id"]]


@pytest.mark.parametrize(
    ("value", "entity_type", "url"),
    [
        ("panel.example.net", "Domain-Name", "https://malbeacon.com/illuminate#panel.example.net"),
        (
            "http://p.example/a b?x=1&y=2#f",
            "Url",
            "https://malbeacon.com/illuminate#http%3A%2F%2Fp.example%2Fa%20b%3Fx%3D1%26y%3D2%23f",
        ),
    ],
)
def test_the_reference_keeps_one_platform_identity_whatever_the_lookups(value, entity_type, url):
    """The platform identifies a reference by its URL and adds references on upsert, never removing one:
    a re-enrichment with more lookups must land on the same reference."""
    entity = entity_for_value(value, entity_type, "TLP:CLEAR")
    identities, descriptions = set(), []
    for endpoints in (["c2"], ["c2", "actorhostname"]):
        lookups = [Lookup(endpoint, parse_records([row("198.51.100.23")]).records) for endpoint in endpoints]
        objects = convert([Findings(entity, lookups)], ConversionOptions(), NOW).objects
        updated = next(o for o in objects if o["id"] == entity.stix_id)
        (reference,) = updated["extensions"][SCO_EXTENSION]["external_references"]
        assert reference["url"] == url and urlsplit(reference["url"]).hostname == "malbeacon.com"
        identities.add(external_reference_id(reference))
        descriptions.append(reference["description"])
    assert len(identities) == 1
    assert descriptions[1].endswith("lookups: c2/c2, c2/actorhostname.") and "2 beacon record(s)" in descriptions[1]
