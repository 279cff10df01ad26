"""Indicators as enrichment targets, through the real helper and broker: looked up by their observable values."""

from datetime import UTC, datetime

import pytest

from malbeacon_connector.stix.builder import AUTHOR_ID
from malbeacon_connector.tlp import marking_id
from stix_checks import assert_valid_bundle, objects_of

from .fake_opencti import FakeOpenCTI, observable_standard_id
from .fake_worker import import_objects
from .test_connector import C2_DOMAIN, C2_IP, enrich, pushed_objects, valid_bundle

SCOPE = "IPv4-Addr,IPv6-Addr,Domain-Name,Indicator"
C2_PATTERN = f"[ipv4-addr:value = '{C2_IP}']"
SKIPPED = "created by this connector"


@pytest.fixture
def connector_id(start_connector, connector_env, fake_opencti) -> str:
    """A connector with indicators in its scope, registered and listening; its id."""
    start_connector({**connector_env, "CONNECTOR_SCOPE": SCOPE}).wait_registered(fake_opencti)
    return connector_env["CONNECTOR_ID"]


def enrich_indicator(fake: FakeOpenCTI, connector_id: str, pattern: str, markings=(), **indicator) -> dict:
    """Publish a manual enrichment of a new indicator and wait for its work."""
    indicator_id = fake.add_indicator(pattern, markings, **indicator)
    return fake.wait_work_processed(fake.publish_enrichment(connector_id, indicator_id))


def indicates(objects: list[dict]) -> list[dict]:
    return [r for r in objects_of(objects, "relationship") if r["relationship_type"] == "indicates"]


def test_an_indicator_of_a_known_c2_brings_the_knowledge_of_its_observable_and_indicates_the_c2(
    connector_id, fake_opencti, simulator
):
    as_observable = pushed_objects(fake_opencti, connector_id, enrich(fake_opencti, connector_id, C2_IP))
    indicator_id = fake_opencti.add_indicator(C2_PATTERN, name="Known C2")
    work = fake_opencti.wait_work_processed(fake_opencti.publish_enrichment(connector_id, indicator_id))
    assert work["in_error"] is False, work["message"]
    assert work["message"].startswith(f"Indicator 'Known C2': {C2_IP} (IPv4-Addr): 6 records, 6 kept")
    assert "; indicates 1 C2 infrastructure; " in work["message"] and work["message"].endswith("objects sent")
    objects = pushed_objects(fake_opencti, connector_id, work)
    assert_valid_bundle(valid_bundle(objects))
    (panel,) = objects_of(objects, "infrastructure")
    (relationship,) = indicates(objects)
    assert (relationship["source_ref"], relationship["target_ref"]) == (indicator_id, panel["id"])
    assert relationship["created_by_ref"] == AUTHOR_ID
    assert relationship["object_marking_refs"] == [marking_id("TLP:CLEAR")]
    # the same knowledge as the observable's (the same ids: the platform merges it), the indicator and its link
    assert {o["id"] for o in objects} == {o["id"] for o in as_observable} | {indicator_id, relationship["id"]}
    report = import_objects(fake_opencti, objects, datetime.now(UTC))
    assert report.refused == []
    assert fake_opencti.knowledge[relationship["id"]]["target_ref"] == panel["id"]
    actors = {o["value"] for o in objects if o["type"] in ("ipv4-addr", "domain-name") and o["value"] != C2_IP}
    assert actors == {o["value"] for o in as_observable if o["type"] in ("ipv4-addr", "domain-name")} - {C2_IP}
    assert fake_opencti.entity(observable_id := next(o["id"] for o in objects if o.get("value") == C2_IP))
    assert observable_id in report.upserted  # merged with the observable enriched before
    assert [(r.endpoint, r.value) for r in simulator.api_requests()] == [("c2", C2_IP)]  # then the cache


@pytest.mark.parametrize("how", ["stix_objects sent", "playbook step"])
def test_the_values_are_read_where_the_platform_puts_them(connector_id, fake_opencti, how):
    """The platform's STIX export holds them in its OpenCTI extension; in a playbook, pycti's reading of the
    entity holds none."""
    indicator_id = fake_opencti.add_indicator(f"[domain-name:value = '{C2_DOMAIN}']")
    if how == "playbook step":
        execution_id = fake_opencti.publish_enrichment(connector_id, indicator_id, playbook=True)
        objects = fake_opencti.wait_playbook_step(execution_id)["bundle"]["objects"]
    else:
        work = fake_opencti.wait_work_processed(
            fake_opencti.publish_enrichment(connector_id, indicator_id, with_stix_objects=True)
        )
        assert work["in_error"] is False and f"{C2_DOMAIN} (Domain-Name): 3 records" in work["message"]
        objects = pushed_objects(fake_opencti, connector_id, work)
    (relationship,) = indicates(objects)
    assert relationship["source_ref"] == indicator_id
    assert indicator_id in {o["id"] for o in objects}


@pytest.mark.parametrize(
    ("indicator", "message"),
    [
        (
            {"pattern": "title: C2 beacon\ndetection: {condition: selection}", "pattern_type": "sigma"},
            "has a sigma pattern type: only the observable values of STIX patterns are looked up",
        ),
        ({"pattern": "[network-traffic:dst_port = 4444]"}, "has no value Malbeacon can be asked for (it holds no"),
        ({"pattern": "[email-addr:value = 'ops@example.com']"}, "'ops@example.com' (Email-Addr): a type Malbeacon"),
    ],
    ids=["sigma", "no value", "no value of a type Malbeacon knows"],
)
def test_an_indicator_without_a_value_to_look_up_ends_with_its_message_and_no_request(
    connector_id, fake_opencti, simulator, indicator, message
):
    work = enrich_indicator(fake_opencti, connector_id, indicator.pop("pattern"), **indicator)
    assert work["in_error"] is False and message in work["message"], work["message"]
    assert work["message"].endswith("; nothing was asked to Malbeacon")
    assert work["expectations"] == 0
    assert simulator.api_requests() == []


def test_an_amber_indicator_gives_amber_knowledge(connector_id, fake_opencti):
    work = enrich_indicator(fake_opencti, connector_id, C2_PATTERN, ["TLP:AMBER"])
    objects = pushed_objects(fake_opencti, connector_id, work)
    created = [o for o in objects_of(objects, "indicator") if o.get("created_by_ref") == AUTHOR_ID]
    created += objects_of(objects, "relationship") + objects_of(objects, "infrastructure")
    assert indicates(objects) and len(created) > 10
    assert all(o["object_marking_refs"] == [marking_id("TLP:AMBER")] for o in created)


def test_a_red_indicator_is_refused_as_a_whole_before_any_request(connector_id, fake_opencti, simulator):
    pattern = f"[ipv4-addr:value = '{C2_IP}' OR domain-name:value = '{C2_DOMAIN}']"
    work = enrich_indicator(fake_opencti, connector_id, pattern, ["TLP:RED"], name="Two C2")
    assert work["in_error"] is False
    assert work["message"] == "'Two C2' is TLP:RED, above MALBEACON_MAX_TLP (TLP:AMBER): not sent to Malbeacon"
    assert simulator.api_requests() == []


def test_an_indicator_is_out_of_scope_unless_indicator_is_in_connector_scope(
    start_connector, connector_env, fake_opencti, simulator
):
    start_connector(connector_env).wait_registered(fake_opencti)  # the default scope
    work = enrich_indicator(fake_opencti, connector_env["CONNECTOR_ID"], C2_PATTERN, name="Known C2")
    assert work["in_error"] is False
    assert work["message"].startswith("Indicator 'Known C2' is out of scope (IPv4-Addr, IPv6-Addr, Domain-Name)")
    assert simulator.api_requests() == []


def test_what_auto_enrichment_of_indicators_sends_back_costs_no_request(
    start_connector, connector_env, fake_opencti, simulator
):
    """With indicators in scope, every indicator the workers create from the bundle comes back too: not looked up.
    The indicator's value, new to the platform, comes back as a new observable (not Malbeacon's) and is enriched
    like any: from the cache."""
    start_connector({**connector_env, "CONNECTOR_SCOPE": SCOPE, "CONNECTOR_AUTO": "true"}).wait_registered(fake_opencti)
    connector_id = connector_env["CONNECTOR_ID"]
    indicator_id = fake_opencti.add_indicator(C2_PATTERN, created_by="An analyst's team")
    work = fake_opencti.wait_work_processed(
        fake_opencti.publish_enrichment(connector_id, indicator_id, mode="auto", trigger="create")
    )
    assert work["in_error"] is False and "indicates 1 C2 infrastructure" in work["message"], work["message"]
    report = fake_opencti.import_pushed(connector_id, work)
    assert report.refused == []
    sent_back = [fake_opencti.entity(i)["entity_type"] for i in report.created if fake_opencti.entity(i)]
    assert sent_back.count("Indicator") == 5 and len(report.auto_enrichments) >= 10
    value_id = observable_standard_id("IPv4-Addr", C2_IP)
    assert value_id in report.created
    for auto_work_id in report.auto_enrichments:
        auto_work = fake_opencti.wait_work_processed(auto_work_id)
        expected = "1 answered by the cache" if auto_work["entity_id"] == value_id else SKIPPED
        assert auto_work["in_error"] is False and expected in auto_work["message"], auto_work["message"]
    assert [(r.endpoint, r.value) for r in simulator.api_requests()] == [("c2", C2_IP)]
