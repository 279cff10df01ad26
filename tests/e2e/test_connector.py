"""The connector in its own process: real pycti helper, real RabbitMQ, fake OpenCTI GraphQL, simulated Malbeacon."""

import signal
import time
import uuid
from datetime import UTC, datetime

import pytest
from pycti import Identity

from malbeacon_connector.malbeacon.simulator import Fault
from malbeacon_connector.tlp import MARKING_DEFINITIONS, marking_id
from platform_rules import revoked_on_arrival
from stix_checks import assert_valid_bundle, objects_of

from .fake_opencti import OCTI_EXT, FakeOpenCTI
from .fake_worker import unique_objects

C2_IP, C2_IPV6, C2_DOMAIN, UNKNOWN = "203.0.113.7", "2001:db8::7", "panel.example.net", "198.51.100.250"
TYPES = {C2_IP: "IPv4-Addr", C2_IPV6: "IPv6-Addr", C2_DOMAIN: "Domain-Name", UNKNOWN: "IPv4-Addr"}


@pytest.fixture
def connector(start_connector, connector_env, fake_opencti):
    """A connector process, registered and listening."""
    process = start_connector(connector_env)
    process.wait_registered(fake_opencti)
    return process


def enrich(fake: FakeOpenCTI, connector_id: str, value: str, markings=(), timeout: float = 30, **options) -> dict:
    """Publish an enrichment of a new entity and wait for its work to be processed."""
    entity_id = fake.add_entity(TYPES.get(value, "IPv4-Addr"), value, markings)
    work_id = fake.publish_enrichment(connector_id, entity_id, **options)
    return fake.wait_work_processed(work_id, timeout=timeout)


def start_slow_enrichment(fake: FakeOpenCTI, connector_id: str, simulator, seconds: float) -> str:
    """Publish an enrichment whose Malbeacon answer takes `seconds`; return once the request reached it."""
    simulator.add_fault(Fault(kind="slow", seconds=seconds))
    work_id = fake.publish_enrichment(connector_id, fake.add_entity("Domain-Name", C2_DOMAIN))
    deadline = time.monotonic() + 20
    while not simulator.api_requests() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert simulator.api_requests(), "the enrichment never reached Malbeacon"
    return work_id


def pushed_objects(fake: FakeOpenCTI, connector_id: str, work: dict) -> list[dict]:
    """Every object pushed for a work, de-duplicated (each split bundle carries its dependencies); none of its
    indicators would be stored revoked by the platform."""
    bundles = fake.take_pushed_bundles(connector_id, expected_count=work["expectations"])
    assert len(bundles) == work["expectations"]
    objects = unique_objects(bundles)  # without pycti's `nb_deps`, added for the platform's workers
    now = datetime.now(UTC)
    assert not [i["name"] for i in objects_of(objects, "indicator") if revoked_on_arrival(i, now)]
    return objects


def valid_bundle(objects: list[dict]) -> dict:
    """The pushed objects as a bundle to validate; the platform's own TLP definitions (passed through as they
    came, OpenCTI-flavoured) are checked in their standard form."""
    standard = {definition["id"]: definition for definition in MARKING_DEFINITIONS.values()}
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [standard.get(o["id"], o) for o in objects]}


@pytest.mark.platform_versions
@pytest.mark.parametrize("value", [C2_IP, C2_IPV6, C2_DOMAIN])
def test_found_value_is_enriched_with_actors_and_a_valid_bundle(
    connector, connector_env, fake_opencti, simulator, value
):
    work = enrich(fake_opencti, connector_env["CONNECTOR_ID"], value)
    assert work["in_error"] is False, work["message"]
    assert f"{value} ({TYPES[value]})" in work["message"] and "objects sent" in work["message"]
    objects = pushed_objects(fake_opencti, connector_env["CONNECTOR_ID"], work)
    assert_valid_bundle(valid_bundle(objects))
    indicators = objects_of(objects, "indicator")
    assert indicators and all(i["object_marking_refs"] == [marking_id("TLP:CLEAR")] for i in indicators)
    assert [(r.endpoint, r.value) for r in simulator.api_requests()] == [("c2", value)]


@pytest.mark.parametrize("fake_opencti", [{"broker_tls": True, "queue_type": "quorum"}], indirect=True)
def test_a_broker_over_tls_with_quorum_queues_serves_the_same(connector, connector_env, fake_opencti):
    work = enrich(fake_opencti, connector_env["CONNECTOR_ID"], C2_DOMAIN)
    assert work["in_error"] is False, work["message"]
    assert_valid_bundle(valid_bundle(pushed_objects(fake_opencti, connector_env["CONNECTOR_ID"], work)))


def test_nested_refs_pycti_exports_without_their_targets_are_not_sent(connector, connector_env, fake_opencti):
    """pycti rebuilds the entity with its `resolves_to_refs`, whose targets are not exported: left dangling,
    they would make the workers retry and drop the enriched observable."""
    elsewhere = fake_opencti.add_entity("Domain-Name", "elsewhere.example.org")
    entity_id = fake_opencti.add_entity("IPv4-Addr", C2_IP, resolves_to=[elsewhere])
    work = fake_opencti.wait_work_processed(fake_opencti.publish_enrichment(connector_env["CONNECTOR_ID"], entity_id))
    assert work["in_error"] is False, work["message"]
    assert fake_opencti.calls_for("stixNestedRefRelationships")
    objects = pushed_objects(fake_opencti, connector_env["CONNECTOR_ID"], work)
    assert_valid_bundle(valid_bundle(objects))  # every reference resolved within the bundle
    assert "resolves_to_refs" not in next(o for o in objects if o["id"] == entity_id)


@pytest.mark.platform_versions
def test_not_found_succeeds_with_a_message_and_sends_nothing(connector, connector_env, fake_opencti):
    work = enrich(fake_opencti, connector_env["CONNECTOR_ID"], UNKNOWN)
    assert work["in_error"] is False
    assert "not found in Malbeacon" in work["message"]
    assert work["expectations"] == 0
    assert fake_opencti.take_pushed_bundles(connector_env["CONNECTOR_ID"], timeout=1) == []


@pytest.mark.platform_versions
def test_refused_key_ends_the_work_in_error_naming_the_setting(start_connector, connector_env, fake_opencti, simulator):
    process = start_connector({**connector_env, "MALBEACON_API_KEY": "WRONG-KEY-123"})
    process.wait_registered(fake_opencti)
    work = enrich(fake_opencti, connector_env["CONNECTOR_ID"], C2_IP)
    assert work["in_error"] is True
    assert "401" in work["message"] and "MALBEACON_API_KEY" in work["message"]
    assert "WRONG-KEY-123" not in process.log_text() + work["message"]


def test_server_error_then_success_is_retried(connector, connector_env, fake_opencti, simulator):
    simulator.add_fault(Fault(kind="status", status=503, times=1))
    work = enrich(fake_opencti, connector_env["CONNECTOR_ID"], C2_IP)
    assert work["in_error"] is False and "6 records" in work["message"]
    assert len(simulator.api_requests()) == 2


def test_hanging_api_ends_in_error_within_the_bound_and_the_next_message_is_served(
    start_connector, connector_env, fake_opencti, simulator
):
    process = start_connector({**connector_env, "MALBEACON_REQUEST_TIMEOUT": "1", "MALBEACON_MAX_RETRIES": "1"})
    process.wait_registered(fake_opencti)
    simulator.add_fault(Fault(kind="hang", value=C2_IP))
    started = time.monotonic()
    work = enrich(fake_opencti, connector_env["CONNECTOR_ID"], C2_IP, timeout=20)
    assert time.monotonic() - started < 10
    assert work["in_error"] is True and "did not answer within 1 s" in work["message"]
    follow_up = enrich(fake_opencti, connector_env["CONNECTOR_ID"], C2_DOMAIN)
    assert follow_up["in_error"] is False and "3 records" in follow_up["message"]


@pytest.mark.platform_versions
def test_red_entity_is_refused_without_any_request_and_the_next_unmarked_one_is_enriched(
    connector, connector_env, fake_opencti, simulator
):
    refused = enrich(fake_opencti, connector_env["CONNECTOR_ID"], C2_IP, markings=["TLP:RED"])
    assert refused["in_error"] is False
    assert "TLP:RED, above MALBEACON_MAX_TLP (TLP:AMBER)" in refused["message"]
    assert simulator.api_requests() == []
    enriched = enrich(fake_opencti, connector_env["CONNECTOR_ID"], C2_DOMAIN)
    assert "3 records" in enriched["message"]
    assert [r.value for r in simulator.api_requests()] == [C2_DOMAIN]


def test_amber_entity_gives_amber_knowledge(connector, connector_env, fake_opencti):
    work = enrich(fake_opencti, connector_env["CONNECTOR_ID"], C2_DOMAIN, markings=["TLP:AMBER", "PAP:RED"])
    objects = pushed_objects(fake_opencti, connector_env["CONNECTOR_ID"], work)
    created = objects_of(objects, "indicator") + objects_of(objects, "relationship")
    assert created and all(o["object_marking_refs"] == [marking_id("TLP:AMBER")] for o in created)


def test_out_of_scope_entity_gets_a_message_and_no_request(start_connector, connector_env, fake_opencti, simulator):
    process = start_connector({**connector_env, "CONNECTOR_SCOPE": "Domain-Name"})
    process.wait_registered(fake_opencti)
    work = enrich(fake_opencti, connector_env["CONNECTOR_ID"], C2_IP)
    assert work["in_error"] is False and "out of scope" in work["message"]
    assert simulator.api_requests() == []
    assert process.running


def test_message_with_stix_objects_is_enriched_too(connector, connector_env, fake_opencti):
    work = enrich(fake_opencti, connector_env["CONNECTOR_ID"], C2_IP, with_stix_objects=True)
    assert work["in_error"] is False and "6 records" in work["message"]


@pytest.mark.platform_versions
@pytest.mark.parametrize(("value", "found"), [(C2_DOMAIN, True), (UNKNOWN, False)])
def test_playbook_gets_a_bundle_back_found_or_not(connector, connector_env, fake_opencti, value, found):
    entity_id = fake_opencti.add_entity(TYPES[value], value)
    execution_id = fake_opencti.publish_enrichment(connector_env["CONNECTOR_ID"], entity_id, playbook=True)
    step = fake_opencti.wait_playbook_step(execution_id)
    objects = step["bundle"]["objects"]
    assert entity_id in {o["id"] for o in objects}
    assert bool(objects_of(objects, "indicator")) is found
    assert_valid_bundle(step["bundle"])


def test_playbook_gets_the_original_bundle_back_when_refused(connector, connector_env, fake_opencti, simulator):
    entity_id = fake_opencti.add_entity("IPv4-Addr", C2_IP, ["TLP:RED"])
    execution_id = fake_opencti.publish_enrichment(
        connector_env["CONNECTOR_ID"], entity_id, playbook=True, bundle_with_markings=True
    )
    step = fake_opencti.wait_playbook_step(execution_id)
    assert {o["id"] for o in step["bundle"]["objects"]} >= {entity_id, marking_id("TLP:RED")}
    assert simulator.api_requests() == []


def test_two_processes_with_one_id_share_the_queue_and_process_each_message_once(
    start_connector, connector_env, fake_opencti
):
    first, second = start_connector(connector_env, name="first"), start_connector(connector_env, name="second")
    first.wait_registered(fake_opencti)
    second.wait_registered(fake_opencti)
    values = [C2_IP, C2_DOMAIN, UNKNOWN, C2_IPV6] * 3
    work_ids = [
        fake_opencti.publish_enrichment(connector_env["CONNECTOR_ID"], fake_opencti.add_entity(TYPES[v], v))
        for v in values
    ]
    works = [fake_opencti.wait_work_processed(work_id, timeout=60) for work_id in work_ids]
    assert all(work["in_error"] is False for work in works)
    processed = fake_opencti.calls_for("workEdit", "toProcessed")
    assert sorted(call.variables["id"] for call in processed) == sorted(work_ids)

    def handled() -> list[int]:  # messages each process logged as processed
        return [
            sum(r["message"] == "Message processed, thread terminated" for r in p.log_records())
            for p in (first, second)
        ]

    deadline = time.monotonic() + 10
    while sum(handled()) < len(work_ids) and time.monotonic() < deadline:  # logged just after the work report
        time.sleep(0.1)
    assert sum(handled()) == len(work_ids) and min(handled()) >= 1, handled()


@pytest.mark.platform_versions
@pytest.mark.parametrize(
    ("seconds", "in_error", "message"),
    [(2.0, False, "3 records"), (25.0, True, "enrich the value again")],
    ids=["finished-in-the-grace-period", "cut-short-past-it"],
)
def test_sigterm_lets_the_message_in_progress_end_and_exits_0_within_10_s(
    connector, connector_env, fake_opencti, simulator, seconds, in_error, message
):
    """A lookup that ends within the grace period completes; a longer one is cut short and its work ends in
    error; either way the work is reported, not lost, and the connector stays registered."""
    work_id = start_slow_enrichment(fake_opencti, connector_env["CONNECTOR_ID"], simulator, seconds=seconds)
    stopped = time.monotonic()
    connector.signal(signal.SIGTERM)
    assert connector.wait_exit(timeout=12) == 0
    assert time.monotonic() - stopped < 10
    work = fake_opencti.works[work_id]
    assert work["processed"] and work["in_error"] is in_error and message in work["message"]
    assert fake_opencti.calls_for("deleteConnector") == []  # still registered: queued work waits for it


def test_debug_log_shows_each_request_and_never_the_api_key(start_connector, connector_env, fake_opencti, simulator):
    secret = "MB-SECRET-7f3a9c"
    simulator.api_key = secret
    process = start_connector(
        {**connector_env, "MALBEACON_API_KEY": secret, "CONNECTOR_LOG_LEVEL": "debug", "MALBEACON_MAX_RETRIES": "1"}
    )
    process.wait_registered(fake_opencti)
    simulator.add_fault(Fault(kind="status", status=503, times=1, value=C2_DOMAIN))
    simulator.add_fault(Fault(kind="status", status=400, value=C2_IPV6, body='{"message": "bad key ' + secret + '"}'))
    works = [enrich(fake_opencti, connector_env["CONNECTOR_ID"], value) for value in (C2_DOMAIN, C2_IPV6, UNKNOWN)]
    assert [work["in_error"] for work in works] == [False, True, False]
    requests = [r["message"] for r in process.log_records() if r["message"].startswith("Malbeacon request")]
    assert len(requests) == 4
    assert "Malbeacon request c2 'panel.example.net' (attempt 2): HTTP 200, 3 records in" in requests[1]
    assert "HTTP 400, 0 records" in requests[3]
    process.terminate()
    assert secret not in process.log_text()
    assert all(secret not in str(work) for work in works)
    assert all(secret not in str(call.variables) for call in fake_opencti.calls)


def test_unreachable_platform_at_start_gives_one_line_errors_and_exit_1(start_connector, connector_env):
    process = start_connector({**connector_env, "OPENCTI_URL": "http://127.0.0.1:9"})
    assert process.wait_exit(timeout=60) == 1
    lines = [line for line in process.log_text().splitlines() if line.startswith("malbeacon-connector:")]
    assert len(lines) == 3
    assert all("cannot register with OpenCTI at http://127.0.0.1:9" in line for line in lines)
    assert "Traceback" not in process.log_text()
    assert connector_env["OPENCTI_TOKEN"] not in process.log_text()


def test_invalid_settings_stop_the_process_with_status_2_and_every_problem(start_connector, connector_env):
    process = start_connector({**connector_env, "CONNECTOR_ID": "ChangeMe", "MALBEACON_MAX_TLP": "purple"})
    assert process.wait_exit(timeout=30) == 2
    log = process.log_text()
    assert "CONNECTOR_ID (connector.id): 'ChangeMe' is not a UUID" in log
    assert "MALBEACON_MAX_TLP (malbeacon.max_tlp): 'purple' is not a TLP level" in log
    assert "Traceback" not in log


@pytest.mark.parametrize("case", ["failed", "out of scope", "invalid value"])
def test_playbook_gets_the_original_bundle_back_on_every_other_path(
    start_connector, connector_env, fake_opencti, simulator, case
):
    scope = "IPv4-Addr" if case == "out of scope" else "IPv4-Addr,Domain-Name"
    process = start_connector({**connector_env, "CONNECTOR_SCOPE": scope})
    process.wait_registered(fake_opencti)
    simulator.add_fault(Fault(kind="status", status=401))
    value = "under_score.example.com" if case == "invalid value" else C2_DOMAIN
    entity_id = fake_opencti.add_entity("Domain-Name", value)
    execution_id = fake_opencti.publish_enrichment(connector_env["CONNECTOR_ID"], entity_id, playbook=True)
    step = fake_opencti.wait_playbook_step(execution_id)
    assert [o["id"] for o in step["bundle"]["objects"]] == [entity_id]
    assert len(simulator.api_requests()) == (1 if case == "failed" else 0)
    assert process.running


def test_rich_response_gives_infrastructure_and_context_through_the_broker(
    start_connector, connector_env, fake_opencti, simulator
):
    process = start_connector({**connector_env, "MALBEACON_IP_LOOKUPS": "c2,actorip", "MALBEACON_MAX_TLP": "TLP:RED"})
    process.wait_registered(fake_opencti)
    work = enrich(fake_opencti, connector_env["CONNECTOR_ID"], "198.51.100.23", markings=["TLP:AMBER+STRICT"])
    assert work["in_error"] is False, work["message"]
    assert [(r.endpoint, r.value) for r in simulator.api_requests()] == [
        ("c2", "198.51.100.23"),
        ("actorip", "198.51.100.23"),
    ]
    objects = pushed_objects(fake_opencti, connector_env["CONNECTOR_ID"], work)
    assert_valid_bundle(valid_bundle(objects))
    panels = {p["name"]: p for p in objects_of(objects, "infrastructure")}
    assert set(panels) == {"C2 panel 203.0.113.7", "C2 panel panel.example.net"}
    entity_id = next(o["id"] for o in objects if o.get("value") == "198.51.100.23")
    reached = {
        r["source_ref"]
        for r in objects_of(objects, "relationship")
        if r["relationship_type"] == "communicates-with" and r["target_ref"] == entity_id
    }
    assert reached == {panel["id"] for panel in panels.values()}
    assert objects_of(objects, "autonomous-system") and objects_of(objects, "location")
    assert all(p["object_marking_refs"] == [marking_id("TLP:AMBER+STRICT")] for p in panels.values())


def test_url_scope_is_opt_in_and_enriches_a_c2_url(start_connector, connector_env, fake_opencti):
    url = "https://panel.example.net/gate/login.php"
    process = start_connector({**connector_env, "CONNECTOR_SCOPE": "Url"})
    process.wait_registered(fake_opencti)
    entity_id = fake_opencti.add_entity("Url", url)
    work = fake_opencti.wait_work_processed(fake_opencti.publish_enrichment(connector_env["CONNECTOR_ID"], entity_id))
    assert work["in_error"] is False and f"{url} (Url): 3 records" in work["message"]
    objects = pushed_objects(fake_opencti, connector_env["CONNECTOR_ID"], work)
    (panel,) = objects_of(objects, "infrastructure")
    assert any(
        r["relationship_type"] == "consists-of" and r["target_ref"] == entity_id
        for r in objects_of(objects, "relationship")
    )
    assert panel["name"] == "C2 panel panel.example.net"


def test_sigterm_while_waiting_for_the_platform_exits_0_at_once(start_connector, connector_env):
    process = start_connector({**connector_env, "OPENCTI_URL": "http://127.0.0.1:9"})
    deadline = time.monotonic() + 30
    while "attempt 1/3" not in process.log_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.signal(signal.SIGTERM)
    assert process.wait_exit(timeout=5) == 0


def test_a_red_marking_in_the_playbook_bundle_is_honoured_though_the_stored_entity_has_none(
    connector, connector_env, fake_opencti, simulator
):
    """An earlier playbook step may have marked the entity: the bundle's markings count too."""
    entity_id = fake_opencti.add_entity("IPv4-Addr", C2_IP, ["TLP:RED"])
    captured: list[dict] = []
    publish = fake_opencti.publish_raw
    fake_opencti.publish_raw = lambda connector_id, message: captured.append(message)  # type: ignore[method-assign]
    execution_id = fake_opencti.publish_enrichment(connector_env["CONNECTOR_ID"], entity_id, playbook=True)
    fake_opencti.publish_raw = publish  # type: ignore[method-assign]
    fake_opencti.entity(entity_id)["objectMarking"] = []  # the stored entity: unmarked
    assert marking_id("TLP:RED") in captured[0]["event"]["bundle"]["objects"][0]["object_marking_refs"]
    fake_opencti.publish_raw(connector_env["CONNECTOR_ID"], captured[0])
    step = fake_opencti.wait_playbook_step(execution_id)
    assert [o["id"] for o in step["bundle"]["objects"]] == [entity_id]
    assert simulator.api_requests() == []


def test_re_enriching_a_value_is_answered_by_the_cache_and_says_so(connector, connector_env, fake_opencti, simulator):
    first = enrich(fake_opencti, connector_env["CONNECTOR_ID"], C2_DOMAIN)
    entity_id = fake_opencti.add_entity("Domain-Name", C2_DOMAIN)  # the same entity again
    again = fake_opencti.wait_work_processed(fake_opencti.publish_enrichment(connector_env["CONNECTOR_ID"], entity_id))
    assert "[1 API call]" in first["message"]
    assert "[0 API calls, 1 answered by the cache]" in again["message"]
    assert again["expectations"] == first["expectations"]
    assert len(simulator.api_requests()) == 1


@pytest.mark.parametrize("with_stix_objects", [False, True], ids=["entity rebuilt by pycti", "stix_objects sent"])
def test_what_enriches_an_entity_shared_with_an_organisation_is_shared_with_it_too(
    connector, connector_env, fake_opencti, with_stix_objects
):
    """pycti shares every pushed object with the entity's organisations (the connector leaves that sending to it)."""
    connector_id = connector_env["CONNECTOR_ID"]
    entity_id = fake_opencti.add_entity("IPv4-Addr", C2_IP, organizations=["Example Corp"])
    work = fake_opencti.wait_work_processed(
        fake_opencti.publish_enrichment(connector_id, entity_id, with_stix_objects=with_stix_objects)
    )
    assert work["in_error"] is False, work["message"]
    objects = pushed_objects(fake_opencti, connector_id, work)
    organization = Identity.generate_id("Example Corp", "organization")
    assert len(objects_of(objects, "indicator")) > 1
    for stix_object in objects:
        extension = stix_object.get("extensions", {}).get(OCTI_EXT, {})
        granted = stix_object.get("x_opencti_granted_refs") or extension.get("granted_refs", [])
        assert organization in granted, stix_object["id"]
