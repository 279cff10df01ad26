"""What the real platform does with the connector's knowledge, played by the fake platform's worker.

The pushed bundles are imported with the platform's rules (decay, upserts, references, the
relationship mapping) and, with auto-enrichment on, every observable created from them comes back
to the connector as an automatic enrichment: the simulator's request log says which reach Malbeacon.
"""

import pytest

from malbeacon_connector.stix.builder import AUTHOR_NAME

from .fake_opencti import FakeOpenCTI
from .test_connector import C2_DOMAIN, C2_IP

SKIPPED = "created by this connector"


def start(start_connector, fake: FakeOpenCTI, env: dict[str, str], **settings: str) -> str:
    """Start a connector with settings on top of `env`; its id once registered."""
    process = start_connector({**env, **settings})
    process.wait_registered(fake)
    return env["CONNECTOR_ID"]


def requests_for(simulator, action) -> int:
    """How many Malbeacon requests an action made."""
    before = len(simulator.api_requests())
    action()
    return len(simulator.api_requests()) - before


def test_what_auto_enrichment_sends_back_from_its_own_bundle_costs_no_request(
    start_connector, connector_env, fake_opencti, simulator
):
    connector_id = start(start_connector, fake_opencti, connector_env, CONNECTOR_AUTO="true")
    entity_id = fake_opencti.add_entity("IPv4-Addr", C2_IP, created_by="An analyst's team")
    work = fake_opencti.wait_work_processed(
        fake_opencti.publish_enrichment(connector_id, entity_id, mode="auto", trigger="create")
    )
    assert work["in_error"] is False and "objects sent" in work["message"], work["message"]
    report = fake_opencti.import_pushed(connector_id, work)
    assert report.refused == []
    assert len(report.auto_enrichments) >= 5  # actor IPs and host names, the C2's parts: each sent back
    for auto_work_id in report.auto_enrichments:
        auto_work = fake_opencti.wait_work_processed(auto_work_id)
        assert auto_work["in_error"] is False and SKIPPED in auto_work["message"], auto_work["message"]
        assert "enrich it manually" in auto_work["message"]
    assert [(r.endpoint, r.value) for r in simulator.api_requests()] == [("c2", C2_IP)]
    indicators = fake_opencti.knowledge_of("indicator")
    assert len(indicators) == 5 and not [i["name"] for i in indicators if i["revoked"]]
    own = fake_opencti.entity(report.created[0])
    assert own is not None and own["createdBy"]["name"] == AUTHOR_NAME


# (how the platform asks, whose observable, Malbeacon requests expected)
TRIGGERS = [
    ("manual click", "own", 1),
    ("auto on create", "own", 0),
    ("auto on update", "own", 0),
    ("playbook step", "own", 1),
    ("older platform, click", "own", 1),
    ("older platform, auto", "own", 0),
    ("auto on create", "foreign", 1),
    ("older platform, auto", "foreign", 1),
]
MESSAGES = {
    "manual click": {},
    "auto on create": {"mode": "auto", "trigger": "create"},
    "auto on update": {"mode": "auto", "trigger": "update"},
    "playbook step": {"playbook": True},
    "older platform, click": {"legacy": True},
    "older platform, auto": {"legacy": True, "mode": "auto"},
}


def enrich_as(fake: FakeOpenCTI, connector_id: str, entity_id: str, trigger: str) -> dict:
    """Publish an enrichment message shaped as the platform sends it for `trigger`; the work (or step) record."""
    options = MESSAGES[trigger]
    reference = fake.publish_enrichment(connector_id, entity_id, **options)
    if options.get("playbook"):
        return fake.wait_playbook_step(reference)
    return fake.wait_work_processed(reference)


def test_only_automatic_enrichments_of_its_own_observables_are_not_looked_up(
    start_connector, connector_env, fake_opencti, simulator
):
    connector_id = start(start_connector, fake_opencti, connector_env, CONNECTOR_AUTO="true", MALBEACON_CACHE_TTL="0")
    observables = {
        "own": fake_opencti.add_entity("IPv4-Addr", C2_IP, created_by=AUTHOR_NAME),
        "foreign": fake_opencti.add_entity("Domain-Name", C2_DOMAIN, created_by="Another source"),
    }
    for trigger, whose, expected in TRIGGERS:
        before = len(simulator.api_requests())
        record = enrich_as(fake_opencti, connector_id, observables[whose], trigger)
        assert len(simulator.api_requests()) - before == expected, (trigger, whose, record.get("message"))
        if "message" in record:  # a work, not a playbook step
            assert record["in_error"] is False, record["message"]
            assert (SKIPPED in record["message"]) is (expected == 0), record["message"]


@pytest.mark.parametrize("trigger", ["auto on create", "older platform, auto"])
def test_the_protection_can_be_switched_off(start_connector, connector_env, fake_opencti, simulator, trigger):
    connector_id = start(
        start_connector, fake_opencti, connector_env, CONNECTOR_AUTO="true", MALBEACON_SKIP_OWN_AUTO_ENRICHMENTS="false"
    )
    own = fake_opencti.add_entity("IPv4-Addr", C2_IP, created_by=AUTHOR_NAME)
    assert requests_for(simulator, lambda: enrich_as(fake_opencti, connector_id, own, trigger)) == 1


def test_a_re_enrichment_with_more_lookups_keeps_one_malbeacon_reference(
    start_connector, connector_env, fake_opencti, simulator
):
    """The platform adds references on upsert and never removes one: a second identity would stay forever."""
    connector_id = start(
        start_connector, fake_opencti, connector_env, MALBEACON_IP_LOOKUPS="c2,c2ip", MALBEACON_CACHE_TTL="0"
    )
    entity_id = fake_opencti.add_entity("IPv4-Addr", C2_IP)
    descriptions = []
    for round_number in (1, 2):
        if round_number == 2:  # now the C2's address also answers as a C2 server IP
            simulator.data["c2ip"][C2_IP] = simulator.data["c2"][C2_IP][:2]
        work = fake_opencti.wait_work_processed(fake_opencti.publish_enrichment(connector_id, entity_id))
        assert work["in_error"] is False, work["message"]
        assert fake_opencti.import_pushed(connector_id, work).refused == []
        references = [r for r in fake_opencti.external_references(entity_id) if r["source_name"] == "Malbeacon"]
        assert len(references) == 1, references
        assert references[0]["url"] == f"https://malbeacon.com/illuminate#{C2_IP}"
        descriptions.append(references[0]["description"])
    assert descriptions[0].endswith("lookups: c2/c2.") and descriptions[1].endswith("lookups: c2/c2, c2/c2ip.")


@pytest.mark.parametrize("fake_opencti", [{"connector_confidence": 30}], indirect=True)
def test_a_less_confident_connector_changes_no_score_but_adds_its_reference(
    start_connector, connector_env, fake_opencti
):
    """The platform's confidence control: the upsert's score and labels are not applied, references are."""
    connector_id = start(start_connector, fake_opencti, connector_env)
    entity_id = fake_opencti.add_entity("IPv4-Addr", C2_IP, score=10, confidence=80)
    work = fake_opencti.wait_work_processed(fake_opencti.publish_enrichment(connector_id, entity_id))
    report = fake_opencti.import_pushed(connector_id, work)
    assert entity_id in report.upserted and report.refused == []
    stored = fake_opencti.entity(entity_id)
    assert stored is not None and stored["x_opencti_score"] == 10 and stored["objectLabel"] == []
    assert [r["source_name"] for r in fake_opencti.external_references(entity_id)] == ["Malbeacon"]
