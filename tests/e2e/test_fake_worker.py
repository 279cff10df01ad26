"""The fake platform's worker applies the platform's rules (so that passing against it means something)."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from pycti import ExternalReference, Identity

from platform_rules import relationship_refusal, revoked_on_arrival

from .fake_opencti import FakeOpenCTI, observable_standard_id
from .fake_worker import import_objects

NOW = datetime(2026, 12, 1, tzinfo=UTC)
AUTHOR = Identity.generate_id("Malbeacon", "organization")


@pytest.fixture
def platform():
    """A fake platform without a broker: the worker's rules only."""
    broker = SimpleNamespace(host="127.0.0.1", port=0, tls_port=0, user="u", password="p", vhost="/")
    with FakeOpenCTI(broker) as fake:
        yield fake


def indicator(valid_from: str, main_type: str, **fields: str) -> dict:
    return {
        "type": "indicator",
        "id": f"indicator--{main_type.lower()}-{valid_from}",
        "name": "x",
        "valid_from": valid_from,
        "x_opencti_main_observable_type": main_type,
        **fields,
    }


@pytest.mark.parametrize(
    ("valid_from", "main_type", "fields", "revoked"),
    [
        ("2024-03-10T08:00:00.000Z", "IPv4-Addr", {}, True),  # + 47 days: April 2024
        ("2026-10-20T00:00:00.000Z", "IPv4-Addr", {}, False),  # + 47 days: 2026-12-06
        ("2026-10-10T00:00:00.000Z", "IPv4-Addr", {}, True),  # + 47 days: 2026-11-26
        ("2026-03-01T00:00:00.000Z", "Domain-Name", {}, False),  # + 300 days
        ("2025-12-01T00:00:00.000Z", "Domain-Name", {}, True),
        ("2025-12-15T00:00:00.000Z", "User-Agent", {}, False),  # + 365 days
        ("2024-03-10T08:00:00.000Z", "IPv4-Addr", {"valid_until": "2027-01-01T00:00:00.000Z"}, False),
    ],
)
def test_an_indicator_is_stored_revoked_when_its_computed_end_is_past(platform, valid_from, main_type, fields, revoked):
    stix_indicator = indicator(valid_from, main_type, **fields)
    assert revoked_on_arrival(stix_indicator, NOW) is revoked
    import_objects(platform, [stix_indicator], NOW)
    assert platform.knowledge[stix_indicator["id"]]["revoked"] is revoked


def test_relationships_outside_the_mapping_are_refused_and_the_rest_goes_on(platform):
    ip = "ipv4-addr--00000000-0000-5000-8000-000000000001"
    allowed = {"type": "relationship", "id": "relationship--a", "relationship_type": "belongs-to"}
    allowed.update(source_ref=ip, target_ref="autonomous-system--00000000-0000-5000-8000-000000000002")
    refused = {"type": "relationship", "id": "relationship--b", "relationship_type": "communicates-with"}
    refused.update(source_ref=ip, target_ref="infrastructure--00000000-0000-4000-8000-000000000003")
    report = import_objects(platform, [refused, allowed], NOW)
    assert report.refused == [relationship_refusal("communicates-with", "ipv4-addr", "infrastructure")]
    assert "relationship--a" in platform.knowledge and "relationship--b" not in platform.knowledge
    assert relationship_refusal("related-to", "ipv4-addr", "infrastructure") is None


def observable(value: str, references: list[dict], score: int = 50, labels: tuple[str, ...] = ()) -> dict:
    extension = {"score": score, "labels": list(labels), "created_by_ref": AUTHOR, "external_references": references}
    return {
        "type": "ipv4-addr",
        "id": observable_standard_id("IPv4-Addr", value),
        "value": value,
        "extensions": {"extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82": extension},
    }


def test_upserts_add_references_by_identity_and_follow_the_confidence_control(platform):
    author = {"type": "identity", "id": AUTHOR, "name": "Malbeacon", "identity_class": "organization"}
    first = {"source_name": "Malbeacon", "external_id": "c2/c2/192.0.2.1"}
    report = import_objects(platform, [author, observable("192.0.2.1", [first])], NOW)
    (standard_id,) = report.created
    assert platform.entity(standard_id)["createdBy"]["standard_id"] == AUTHOR
    same_url = [{"source_name": "Malbeacon", "url": "https://malbeacon.com/illuminate#192.0.2.1", "description": ""}]
    for description in ("one", "two"):
        same_url[0]["description"] = description
        import_objects(platform, [observable("192.0.2.1", same_url, score=70, labels=("stealer",))], NOW)
    references = platform.external_references(standard_id)
    assert [r["description"] for r in references] == [None, "two"]  # the second identity came once, never removed
    assert references[0]["standard_id"] == ExternalReference.generate_id(None, "Malbeacon", "c2/c2/192.0.2.1")
    assert platform.entity(standard_id)["x_opencti_score"] == 70
    platform.connector_confidence = 10
    import_objects(platform, [observable("192.0.2.1", [], score=90, labels=("other",))], NOW)
    entity = platform.entity(standard_id)
    assert entity["x_opencti_score"] == 70 and [label["value"] for label in entity["objectLabel"]] == ["stealer"]


def test_a_country_is_matched_by_its_aliases(platform):
    stored = {"type": "location", "id": "location--stored", "name": "United States of America"}
    stored["x_opencti_aliases"] = ["US", "USA"]
    sent = {"type": "location", "id": "location--sent", "name": "United States", "x_opencti_aliases": ["US"]}
    import_objects(platform, [stored], NOW)
    import_objects(platform, [sent], NOW)
    assert [location["id"] for location in platform.knowledge_of("location")] == ["location--stored"]
    assert platform.knowledge["location--stored"]["x_opencti_stix_ids"] == ["location--sent"]
