"""The converter's richer knowledge: C2 infrastructures, autonomous systems, countries, user agents, lookups."""

from datetime import UTC, datetime

import pytest

from malbeacon_connector.malbeacon.records import parse_records
from malbeacon_connector.pipeline import entity_for_value
from malbeacon_connector.stix.convert import convert
from malbeacon_connector.stix.ids import autonomous_system_id, infrastructure_id, location_id, observable_id
from malbeacon_connector.stix.models import ConversionOptions, Findings, Lookup
from malbeacon_connector.tlp import marking_id
from stix_checks import assert_valid_bundle, full_bundle, objects_of

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
C2_URL = "http://panel.example.net/gate.php?id=1&amp;k=2"


def beacon(**fields: str) -> dict:
    """A full beacon row for panel.example.net; keyword arguments override fields."""
    row = {
        "tstamp": "2021-03-04 08:12:45",
        "actorip": "198.51.100.23",
        "actorhostname": "host-23.isp.example.com",
        "actorasnorg": "AS64500 Example Broadband",
        "actorcountrycode": "NL",
        "c2": C2_URL,
        "c2domain": "panel.example.net",
        "c2domainresolved": "203.0.113.80",
        "c2asnorg": "AS64501 Example Hosting",
        "c2countrycode": "US",
        "useragent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/118.0",
        "tags": "formbook",
    }
    return {**row, **fields}


def convert_rows(
    rows: list[dict],
    *,
    value: str = "panel.example.net",
    entity_type: str = "Domain-Name",
    endpoint: str = "c2",
    tlp: str = "TLP:CLEAR",
    **options: bool,
) -> tuple[list[dict], dict]:
    entity = entity_for_value(value, entity_type, tlp)
    lookup = Lookup(endpoint, parse_records(rows).records)
    objects = convert([Findings(entity, [lookup])], ConversionOptions(**options), NOW).objects
    assert_valid_bundle(full_bundle(objects, entity.stix_object))
    return objects, entity.stix_object


def names(objects: list[dict]) -> dict[str, str]:
    """Object id -> a readable name (value, name or AS number)."""
    return {o["id"]: str(o.get("value") or o.get("number") or o.get("name")) for o in objects}


def edges(objects: list[dict], relationship_type: str) -> set[tuple[str, str]]:
    named = names(objects)
    return {
        (named.get(r["source_ref"], r["source_ref"]), named.get(r["target_ref"], r["target_ref"]))
        for r in objects_of(objects, "relationship")
        if r["relationship_type"] == relationship_type
    }


def test_one_infrastructure_per_c2_panel_made_of_its_observables():
    rows = [beacon(), beacon(tstamp="2021-03-01 12:00:00", actorip="192.0.2.9", actorhostname="NA")]
    objects, _ = convert_rows(rows)
    (panel,) = objects_of(objects, "infrastructure")
    assert panel["id"] == infrastructure_id("C2 panel panel.example.net")
    assert panel["infrastructure_types"] == ["command-and-control"]
    assert (panel["first_seen"], panel["last_seen"]) == ("2021-03-01T12:00:00.000Z", "2021-03-04T08:12:45.000Z")
    assert panel["labels"] == ["formbook"]
    assert edges(objects, "consists-of") == {
        ("C2 panel panel.example.net", "panel.example.net"),
        ("C2 panel panel.example.net", "203.0.113.80"),
        ("C2 panel panel.example.net", "http://panel.example.net/gate.php?id=1&k=2"),
    }
    assert ("panel.example.net", "203.0.113.80") in edges(objects, "resolves-to")


def test_the_panel_communicates_with_every_actor_instead_of_a_generic_link():
    objects, _ = convert_rows([beacon(), beacon(actorip="2001:db8::5", actorhostname="NA")])
    assert edges(objects, "communicates-with") == {
        ("C2 panel panel.example.net", "198.51.100.23"),
        ("C2 panel panel.example.net", "host-23.isp.example.com"),
        ("C2 panel panel.example.net", "2001:db8::5"),
    }
    assert edges(objects, "related-to") == set()
    link = next(r for r in objects_of(objects, "relationship") if r["relationship_type"] == "communicates-with")
    assert "first seen 2021-03-04T08:12:45.000Z" in link["description"]


@pytest.mark.parametrize(
    ("fields", "panel_name"),
    [
        ({}, "C2 panel panel.example.net"),
        ({"c2domain": "NA", "c2": "http://203.0.113.80:8080/x.php"}, "C2 panel 203.0.113.80"),
        ({"c2domain": "NA", "c2": "NA"}, "C2 panel panel.example.net"),  # the enriched C2 itself
        ({"c2domain": "_bad_", "c2": "http://[2001:db8::7]/c2"}, "C2 panel 2001:db8::7"),
    ],
)
def test_the_panel_is_named_after_its_domain_its_url_host_or_the_enriched_value(fields, panel_name):
    objects, _ = convert_rows([beacon(**fields)])
    assert [p["name"] for p in objects_of(objects, "infrastructure")] == [panel_name]


def test_two_panels_in_one_answer_give_two_infrastructures():
    rows = [beacon(), beacon(c2domain="other.example.org", c2="https://other.example.org/login", actorip="192.0.2.7")]
    objects, _ = convert_rows(rows, value="203.0.113.80", entity_type="IPv4-Addr")
    assert {p["name"] for p in objects_of(objects, "infrastructure")} == {
        "C2 panel panel.example.net",
        "C2 panel other.example.org",
    }
    assert ("C2 panel other.example.org", "192.0.2.7") in edges(objects, "communicates-with")
    assert ("C2 panel panel.example.net", "192.0.2.7") not in edges(objects, "communicates-with")


def test_autonomous_systems_and_countries_of_actor_and_c2_addresses():
    objects, _ = convert_rows([beacon(), beacon(actorip="192.0.2.9", actorhostname="NA")])
    assert edges(objects, "belongs-to") == {
        ("198.51.100.23", "64500"),
        ("192.0.2.9", "64500"),
        ("203.0.113.80", "64501"),
    }
    assert edges(objects, "located-at") == {
        ("198.51.100.23", "Netherlands"),
        ("192.0.2.9", "Netherlands"),
        ("203.0.113.80", "United States"),
    }
    systems = {o["number"]: o for o in objects_of(objects, "autonomous-system")}
    assert systems[64500]["name"] == "Example Broadband" and systems[64500]["id"] == autonomous_system_id(64500)
    netherlands = next(o for o in objects_of(objects, "location") if o["name"] == "Netherlands")
    assert netherlands["id"] == location_id("Netherlands", "Country") and netherlands["country"] == "NL"


def test_shared_reference_objects_carry_no_marking_but_every_link_to_them_does():
    objects, _ = convert_rows([beacon()], tlp="TLP:AMBER")
    for reference in objects_of(objects, "autonomous-system") + objects_of(objects, "location"):
        assert "object_marking_refs" not in reference
    for relationship in objects_of(objects, "relationship"):
        assert relationship["object_marking_refs"] == [marking_id("TLP:AMBER")]
    (panel,) = objects_of(objects, "infrastructure")
    assert panel["object_marking_refs"] == [marking_id("TLP:AMBER")]


def test_missing_or_invalid_context_adds_nothing():
    row = beacon(
        actorasnorg="NA",
        actorcountrycode="XX",
        c2asnorg="Hoster without number",
        c2countrycode="",
        c2domainresolved="NA",
        c2="NA",
        c2domain="NA",
        useragent="NA",
        tags="NA",
    )
    objects, _ = convert_rows([row], user_agents=True)
    for stix_type in ("autonomous-system", "location", "url", "user-agent"):
        assert objects_of(objects, stix_type) == []
    assert edges(objects, "consists-of") == {("C2 panel panel.example.net", "panel.example.net")}
    assert all("labels" not in o for o in objects_of(objects, "indicator"))


@pytest.mark.parametrize(
    ("switch", "absent"),
    [
        ("create_infrastructure", "infrastructure"),
        ("add_autonomous_systems", "autonomous-system"),
        ("add_countries", "location"),
    ],
)
def test_each_kind_of_context_can_be_switched_off(switch, absent):
    option = {
        "create_infrastructure": "infrastructure",
        "add_autonomous_systems": "autonomous_systems",
        "add_countries": "countries",
    }[switch]
    objects, _ = convert_rows([beacon()], **{option: False})
    assert objects_of(objects, absent) == []


def test_without_infrastructure_actors_are_related_to_the_enriched_c2():
    objects, _ = convert_rows([beacon()], infrastructure=False)
    assert edges(objects, "related-to") == {
        ("198.51.100.23", "panel.example.net"),
        ("host-23.isp.example.com", "panel.example.net"),
    }
    assert objects_of(objects, "url") == []


def test_labels_and_seen_times_can_be_switched_off():
    objects, entity = convert_rows([beacon()], labels=False, seen_times=False)
    assert not any("labels" in o or "x_opencti_labels" in o for o in objects if o["id"] != entity["id"])
    (panel,) = objects_of(objects, "infrastructure")
    assert "first_seen" not in panel
    assert all("first seen" not in o.get("description", "") + o.get("x_opencti_description", "") for o in objects)
    assert objects_of(objects, "indicator")[0]["valid_from"] == "2026-01-02T03:04:05.000Z"  # the enrichment


def test_user_agents_are_opt_in():
    objects, _ = convert_rows([beacon()])
    assert objects_of(objects, "user-agent") == []
    objects, _ = convert_rows([beacon()], user_agents=True)
    (agent,) = objects_of(objects, "user-agent")
    assert agent["id"] == observable_id("user-agent", agent["value"])
    assert edges(objects, "related-to") == {("198.51.100.23", agent["value"])}


def test_an_enriched_ip_found_as_an_actor_is_linked_to_the_panels_it_reached():
    objects, entity = convert_rows([beacon()], value="198.51.100.23", entity_type="IPv4-Addr", endpoint="actorip")
    assert ("C2 panel panel.example.net", "198.51.100.23") in edges(objects, "communicates-with")
    assert [i["name"] for i in objects_of(objects, "indicator")] == ["host-23.isp.example.com"]
    assert [o["id"] for o in objects].count(entity["id"]) == 1
    assert ("198.51.100.23", "64500") in edges(objects, "belongs-to")


def test_an_enriched_host_name_found_as_an_actor_resolves_to_its_ips_which_become_actors():
    rows = [beacon(), beacon(actorip="192.0.2.9")]
    objects, _ = convert_rows(rows, value="host-23.isp.example.com", endpoint="actorhostname")
    assert edges(objects, "resolves-to") >= {
        ("host-23.isp.example.com", "198.51.100.23"),
        ("host-23.isp.example.com", "192.0.2.9"),
    }
    assert {i["name"] for i in objects_of(objects, "indicator")} == {"198.51.100.23", "192.0.2.9"}
    assert ("C2 panel panel.example.net", "host-23.isp.example.com") in edges(objects, "communicates-with")
    assert edges(objects, "consists-of") >= {("C2 panel panel.example.net", "panel.example.net")}


def test_an_enriched_user_agent_is_linked_to_the_actors_who_used_it():
    agent = "Mozilla/5.0 (X11; Linux x86_64) Firefox/118.0"
    objects, _ = convert_rows([beacon()], value=agent, entity_type="User-Agent", endpoint="useragent")
    assert edges(objects, "related-to") == {("198.51.100.23", agent), ("host-23.isp.example.com", agent)}
    assert ("C2 panel panel.example.net", "198.51.100.23") in edges(objects, "communicates-with")


def test_an_enriched_c2_url_is_part_of_its_panel():
    url = "http://panel.example.net/gate.php?id=1&k=2"
    objects, entity = convert_rows([beacon()], value=url, entity_type="Url")
    assert ("C2 panel panel.example.net", url) in edges(objects, "consists-of")
    assert [o["id"] for o in objects].count(entity["id"]) == 1


def test_c2ip_lookup_makes_the_enriched_ip_part_of_the_panel():
    objects, _ = convert_rows([beacon()], value="203.0.113.80", entity_type="IPv4-Addr", endpoint="c2ip")
    assert ("C2 panel panel.example.net", "203.0.113.80") in edges(objects, "consists-of")
    assert ("203.0.113.80", "64501") in edges(objects, "belongs-to")


def test_records_of_several_lookups_are_merged_into_one_graph():
    entity = entity_for_value("198.51.100.23", "IPv4-Addr", "TLP:CLEAR")
    lookups = [
        Lookup("c2", parse_records([beacon(c2domain="NA", c2="NA", actorip="192.0.2.1")]).records),
        Lookup("actorip", parse_records([beacon()]).records),
    ]
    objects = convert([Findings(entity, lookups)], ConversionOptions(), NOW).objects
    assert {p["name"] for p in objects_of(objects, "infrastructure")} == {
        "C2 panel 198.51.100.23",
        "C2 panel panel.example.net",
    }
    ids = [o["id"] for o in objects]
    assert len(ids) == len(set(ids))
    reference = next(o for o in objects if o["id"] == entity.stix_id)["extensions"]
    assert "lookups: c2/c2, c2/actorip." in str(reference)
