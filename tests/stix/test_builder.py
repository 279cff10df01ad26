"""The STIX builder: each id once (the first version wins), markings where they belong, valid objects."""

from datetime import UTC, datetime, timedelta, timezone

from malbeacon_connector.stix.builder import AUTHOR_ID, StixBuilder, stix_time
from malbeacon_connector.tlp import MARKING_DEFINITIONS, marking_id
from malbeacon_connector.values import AutonomousSystem, Country
from stix_checks import assert_valid_bundle

NOW = datetime(2026, 12, 1, 12, 30, 45, 123456, tzinfo=UTC)


def test_stix_time_is_utc_with_milliseconds_and_z():
    assert stix_time(NOW) == "2026-12-01T12:30:45.123Z"
    assert stix_time(datetime(2026, 12, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))) == "2026-12-01T12:00:00.000Z"


def test_the_first_version_of_an_id_wins():
    builder = StixBuilder(50, NOW)
    first = builder.observable("IPv4-Addr", "192.0.2.1", "TLP:AMBER", description="first")
    again = builder.observable("IPv4-Addr", "192.0.2.1", "TLP:CLEAR", description="second")
    (stored,) = [o for o in builder.ordered() if o["id"] == first]
    assert again == first and stored["x_opencti_description"] == "first"
    assert stored["object_marking_refs"] == [marking_id("TLP:AMBER")]


def test_marking_definitions_come_first_least_restrictive_first_and_only_those_used():
    builder = StixBuilder(50, NOW)
    builder.author()
    builder.observable("Domain-Name", "a.example.com", "TLP:RED")
    builder.observable("Domain-Name", "b.example.com", "TLP:GREEN")
    objects = builder.ordered()
    assert objects[:2] == [MARKING_DEFINITIONS["TLP:GREEN"], MARKING_DEFINITIONS["TLP:RED"]]
    assert [o["type"] for o in objects[2:]] == ["identity", "domain-name", "domain-name"]


def test_shared_reference_objects_carry_no_marking_but_their_relationships_do():
    builder = StixBuilder(50, NOW)
    builder.author()
    ip = builder.observable("IPv4-Addr", "192.0.2.1", "TLP:AMBER")
    system = builder.autonomous_system(AutonomousSystem(64500, "Example ISP"))
    country = builder.country(Country("NL", "Netherlands"))
    links = [
        builder.relationship(kind, ip, target, "TLP:AMBER")
        for kind, target in [("belongs-to", system), ("located-at", country)]
    ]
    by_id = {o["id"]: o for o in builder.ordered()}
    assert all("object_marking_refs" not in by_id[shared] for shared in (AUTHOR_ID, system, country))
    assert all(by_id[link]["object_marking_refs"] == [marking_id("TLP:AMBER")] for link in links)
    assert by_id[country]["x_opencti_aliases"] == ["NL"] and "created_by_ref" not in by_id[AUTHOR_ID]
    assert_valid_bundle(
        {"type": "bundle", "id": "bundle--6f1c1b0e-9b1d-4c59-8f27-0a6f0d6f4a11", "objects": list(by_id.values())}
    )


def test_an_indicator_has_valid_until_only_when_given_and_the_score():
    builder = StixBuilder(70, NOW)
    builder.author()
    open_ended = builder.indicator("IPv4-Addr", "192.0.2.1", "TLP:CLEAR", (NOW, None), "d", None)
    bounded = builder.indicator(
        "Domain-Name", "a.example.com", "TLP:CLEAR", (NOW, NOW + timedelta(days=47)), "d", ["x"]
    )
    by_id = {o["id"]: o for o in builder.ordered()}
    assert "valid_until" not in by_id[open_ended] and by_id[bounded]["valid_until"] == "2027-01-17T12:30:45.123Z"
    assert by_id[open_ended]["pattern"] == "[ipv4-addr:value = '192.0.2.1']" and by_id[bounded]["labels"] == ["x"]
    assert {by_id[i]["x_opencti_score"] for i in (open_ended, bounded)} == {70}
    assert all(by_id[i]["created_by_ref"] == AUTHOR_ID for i in (open_ended, bounded))
