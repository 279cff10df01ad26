"""Operating the connector: its Prometheus metrics scraped from pycti's server, and the daily API budget kept
in the connector's state on the platform (real connector processes, real broker, fake platform, simulator)."""

import socket
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from malbeacon_connector.malbeacon.simulator import Fault
from malbeacon_connector.opencti.state import STATE_KEY

from .fake_worker import unique_objects
from .test_connector import C2_DOMAIN, C2_IP, C2_IPV6, UNKNOWN, enrich

KNOWN = {C2_IP, C2_IPV6, C2_DOMAIN}
STATUS_OUTCOMES = {400: "no_results", 401: "unauthorized", 403: "rate_limited", 429: "rate_limited"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(port: int, timeout: float = 20) -> dict[tuple[str, tuple], float]:
    """Every sample served on the metrics port, by (name, sorted labels); waits (bounded) for the server."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                text = response.read().decode()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def request_outcomes(simulator) -> Counter:
    """What the simulator's request log says each request's outcome was."""
    outcomes: Counter = Counter()
    for request in simulator.api_requests():
        if request.status == 200:
            outcome = "found" if request.value in KNOWN else "no_results"
        else:
            outcome = STATUS_OUTCOMES.get(request.status, "error")
        outcomes[(request.endpoint, outcome)] += 1
    return outcomes


def test_metrics_count_exactly_what_happened(start_connector, connector_env, fake_opencti, simulator):
    port = free_port()
    env = {
        **connector_env,
        "CONNECTOR_EXPOSE_METRICS": "true",
        "CONNECTOR_METRICS_PORT": str(port),
        "MALBEACON_DAILY_CALL_LIMIT": "50",
    }
    start_connector(env).wait_registered(fake_opencti)
    connector_id = env["CONNECTOR_ID"]
    simulator.add_fault(Fault(kind="status", status=503, value=C2_IP, times=1))
    works = [
        enrich(fake_opencti, connector_id, C2_IP),  # a 503, then found
        enrich(fake_opencti, connector_id, UNKNOWN),  # not found
        enrich(fake_opencti, connector_id, C2_IP),  # found, from the cache
        enrich(fake_opencti, connector_id, C2_DOMAIN, markings=["TLP:RED"]),  # refused
    ]
    out_of_scope = fake_opencti.add_entity("Url", "http://panel.example.net/login")
    works.append(fake_opencti.wait_work_processed(fake_opencti.publish_enrichment(connector_id, out_of_scope)))
    assert not any(work["in_error"] for work in works), [work["message"] for work in works]
    pushed = unique_objects(fake_opencti.take_pushed_bundles(connector_id, expected_count=works[0]["expectations"] * 2))

    samples = scrape(port)
    served = Counter(
        {
            (dict(labels)["endpoint"], dict(labels)["outcome"]): value
            for (name, labels), value in samples.items()
            if name == "malbeacon_api_requests_total" and value
        }
    )
    assert (
        served
        == request_outcomes(simulator)
        == Counter({("c2", "error"): 1, ("c2", "found"): 1, ("c2", "no_results"): 1})
    )
    enrichments = {
        dict(labels)["outcome"]: value
        for (name, labels), value in samples.items()
        if name == "malbeacon_enrichments_total" and value
    }
    assert enrichments == {"found": 2, "not_found": 1, "refused_tlp": 1, "out_of_scope": 1}
    assert samples[("malbeacon_cache_hits_total", ())] == 1
    assert samples[("malbeacon_lookup_duration_seconds_count", ())] == 2
    sent = sum(int(work["message"].split(" objects sent")[0].rsplit(" ", 1)[1]) for work in (works[0], works[2]))
    assert samples[("malbeacon_objects_sent_total", ())] == sent == 2 * len(pushed)
    assert samples[("malbeacon_api_calls_left_today", ())] == 50 - 3
    assert ("bundles_sent_total", ()) in samples  # pycti's own, on the same server


def test_metrics_off_serve_nothing(start_connector, connector_env, fake_opencti):
    port = free_port()
    start_connector({**connector_env, "CONNECTOR_METRICS_PORT": str(port)}).wait_registered(fake_opencti)
    work = enrich(fake_opencti, connector_env["CONNECTOR_ID"], C2_IP)
    assert work["in_error"] is False
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_the_daily_limit_holds_across_a_crash_a_new_process_and_ends_with_a_state_reset(
    start_connector, connector_env, fake_opencti, simulator
):
    env = {**connector_env, "MALBEACON_DAILY_CALL_LIMIT": "2"}
    connector_id = env["CONNECTOR_ID"]
    first = start_connector(env, name="first")
    first.wait_registered(fake_opencti)
    assert enrich(fake_opencti, connector_id, C2_IP)["in_error"] is False
    assert enrich(fake_opencti, connector_id, C2_DOMAIN)["in_error"] is False
    refused = enrich(fake_opencti, connector_id, C2_IPV6)
    assert refused["in_error"] is True
    assert "daily limit of 2 Malbeacon requests is reached (MALBEACON_DAILY_CALL_LIMIT)" in refused["message"]
    assert "no request was sent; it resets at" in refused["message"] and "UTC" in refused["message"]
    cached = enrich(fake_opencti, connector_id, C2_IP)  # cached answers are still served
    assert cached["in_error"] is False and "answered by the cache" in cached["message"]
    assert len(simulator.api_requests()) == 2
    assert fake_opencti.connector_state(connector_id)[STATE_KEY] == {"day": today(), "count": 2}

    first.kill()  # SIGKILL right after the last call: nothing is flushed at exit
    second = start_connector(env, name="second")
    second.wait_registered(fake_opencti)
    assert enrich(fake_opencti, connector_id, UNKNOWN)["in_error"] is True
    entity_id = fake_opencti.add_entity("IPv6-Addr", C2_IPV6)
    step = fake_opencti.wait_playbook_step(fake_opencti.publish_enrichment(connector_id, entity_id, playbook=True))
    assert entity_id in {o["id"] for o in step["bundle"]["objects"]}  # a playbook gets its bundle back
    assert len(simulator.api_requests()) == 2

    fake_opencti.reset_state(connector_id)  # "reset state" in the UI gives the day's budget back
    assert enrich(fake_opencti, connector_id, C2_IPV6)["in_error"] is False
    assert len(simulator.api_requests()) == 3
    assert fake_opencti.connector_state(connector_id)[STATE_KEY] == {"day": today(), "count": 1}


def test_two_running_processes_with_one_id_share_the_count(start_connector, connector_env, fake_opencti, simulator):
    env = {**connector_env, "MALBEACON_DAILY_CALL_LIMIT": "3", "MALBEACON_CACHE_TTL": "0"}
    processes = [start_connector(env, name=f"replica-{n}") for n in (1, 2)]
    for process in processes:
        process.wait_registered(fake_opencti)
    deadline = time.monotonic() + 20  # each replica's first ping (with its empty state) is behind us
    while fake_opencti.connectors[env["CONNECTOR_ID"]].pings < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    works = [enrich(fake_opencti, env["CONNECTOR_ID"], value) for value in (C2_IP, C2_IPV6, C2_DOMAIN, UNKNOWN, C2_IP)]
    assert [work["in_error"] for work in works] == [False, False, False, True, True]
    assert len(simulator.api_requests()) == 3
    handled_by = [process.name for process in processes if "Malbeacon enrichment" in process.log_text()]
    assert len(handled_by) == 2, "both replicas should have handled enrichments"
