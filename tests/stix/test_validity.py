"""Indicators arrive valid: judged with the platform's own decay rule, for each setting, old and recent beacons."""

import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from malbeacon_connector.cli import EXIT_OK, main
from malbeacon_connector.malbeacon.records import parse_records
from malbeacon_connector.pipeline import entity_for_value
from malbeacon_connector.stix.convert import convert
from malbeacon_connector.stix.models import ConversionOptions, Findings, Lookup
from platform_rules import parse_time, revoked_on_arrival, stored_valid_until
from stix_checks import objects_of

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
OLD = "2024-03-10 08:00:00"  # revoked since April 2024 if valid from the first beacon
RECENT = (NOW - timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S")


def beacon(tstamp: str, actorip: str = "198.51.100.23", actorhostname: str = "host-23.isp.example.com") -> dict:
    return {"tstamp": tstamp, "actorip": actorip, "actorhostname": actorhostname, "c2domain": "panel.example.net"}


def indicators(rows: list[dict], **options: object) -> list[dict]:
    entity = entity_for_value("panel.example.net", "Domain-Name", "TLP:CLEAR")
    lookup = Lookup("c2", parse_records(rows).records)
    return objects_of(convert([Findings(entity, [lookup])], ConversionOptions(**options), NOW).objects, "indicator")


ROWS = {
    "old": [beacon(OLD), beacon("2024-03-20 09:00:00")],
    "recent": [beacon(RECENT)],
    "old and recent": [beacon(OLD, "192.0.2.44", "vpn-exit.example.org"), beacon(RECENT, "192.0.2.44", "NA")],
    "undated": [beacon("NA")],
}


@pytest.mark.parametrize("valid_from", ["enrichment", "last_seen"])
@pytest.mark.parametrize("beacons", list(ROWS))
def test_every_indicator_is_valid_on_arrival_under_the_platform_decay_rule(valid_from, beacons):
    found = indicators(ROWS[beacons], indicator_valid_from=valid_from)
    assert {i["x_opencti_main_observable_type"] for i in found} == {"IPv4-Addr", "Domain-Name"}
    for indicator in found:
        assert not revoked_on_arrival(indicator, NOW), indicator
        assert stored_valid_until(indicator) > NOW + timedelta(days=30)  # not about to expire either


def test_by_default_valid_from_the_enrichment_with_the_beacon_times_in_the_description():
    for indicator in indicators(ROWS["old"]):
        assert indicator["valid_from"] == "2026-12-01T12:00:00.000Z" and "valid_until" not in indicator
        assert "first seen 2024-03-10T08:00:00.000Z, last seen 2024-03-20T09:00:00.000Z" in indicator["description"]


def test_last_seen_is_valid_from_the_last_beacon_until_the_built_in_lifetime_after_the_enrichment():
    by_type = {
        i["x_opencti_main_observable_type"]: i for i in indicators(ROWS["old"], indicator_valid_from="last_seen")
    }
    for entity_type, days in (("IPv4-Addr", 47), ("Domain-Name", 300)):
        indicator = by_type[entity_type]
        assert indicator["valid_from"] == "2024-03-20T09:00:00.000Z"
        assert parse_time(indicator["valid_until"]) == NOW + timedelta(days=days)


def test_last_seen_never_starts_after_the_enrichment():
    (indicator, _) = indicators([beacon("2099-01-01 00:00:00")], indicator_valid_from="last_seen")
    assert parse_time(indicator["valid_from"]) == NOW and not revoked_on_arrival(indicator, NOW)


def test_indicators_can_be_switched_off_keeping_observables_infrastructure_and_relationships():
    entity = entity_for_value("panel.example.net", "Domain-Name", "TLP:CLEAR")
    lookup = Lookup("c2", parse_records(ROWS["old and recent"]).records)
    objects = convert([Findings(entity, [lookup])], ConversionOptions(indicators=False), NOW).objects
    assert objects_of(objects, "indicator") == []
    assert {o["value"] for o in objects_of(objects, "ipv4-addr")} == {"192.0.2.44"}
    assert objects_of(objects, "infrastructure")
    types = {r["relationship_type"] for r in objects_of(objects, "relationship")}
    assert "based-on" not in types and {"communicates-with", "resolves-to", "consists-of"} <= types
    ids = {o["id"] for o in objects}
    assert all(r["source_ref"] in ids | {entity.stix_id} for r in objects_of(objects, "relationship"))


def test_the_demo_bundle_has_no_indicator_revoked_on_arrival(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--output", "demo.json"]) == EXIT_OK
    found = objects_of(json.loads((tmp_path / "demo.json").read_text()), "indicator")
    assert len(found) == 9
    assert not [i["name"] for i in found if revoked_on_arrival(i, datetime.now(UTC))]


def test_enriching_the_sample_values_with_last_seen_revokes_none(capsys, monkeypatch, tmp_path, simulator):
    for name in list(os.environ):
        if name.startswith("MALBEACON_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MALBEACON_API_BASE_URL", simulator.base_url)
    monkeypatch.setenv("MALBEACON_API_KEY", simulator.api_key)
    monkeypatch.setenv("MALBEACON_INDICATOR_VALID_FROM", "last_seen")
    monkeypatch.chdir(tmp_path)
    assert main(["enrich", "--output", "out.json", *sorted(simulator.data["c2"])]) == EXIT_OK
    found = objects_of(json.loads((tmp_path / "out.json").read_text()), "indicator")
    assert len(found) == 9 and all(i["valid_from"] < "2023" for i in found)  # the sample's beacons are old
    assert not [i["name"] for i in found if revoked_on_arrival(i, datetime.now(UTC))]
