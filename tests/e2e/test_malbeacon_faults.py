"""Whatever Malbeacon does, each work finishes (in error where it failed) within a stated bound, the
connector's memory stays bounded, the key never shows, and the next message is processed normally."""

import json
import time

import pytest

from malbeacon_connector.malbeacon.simulator import Fault

from .fake_opencti import decode_bundle
from .test_connector import C2_DOMAIN, enrich

SECRET = "MB-FAULTS-KEY-42"
# With MALBEACON_REQUEST_TIMEOUT=1 and MALBEACON_MAX_RETRIES=1 a lookup takes at most 2 s, plus
# pycti's own handling: every work below must be finished within this many seconds of publishing.
BOUND_SECONDS = 6

FAULTS = {
    "no answer at all": (Fault(kind="hang"), "did not answer within 1 s"),
    "a body slower than the timeout": (Fault(kind="trickle", seconds=0.3), "did not answer within 1 s"),
    "headers slower than the timeout": (Fault(kind="slow-headers", seconds=0.3), "did not answer within 1 s"),
    "connection reset mid-body": (Fault(kind="reset"), "cannot reach Malbeacon"),
    "5xx storm": (Fault(kind="status", status=502), "Malbeacon failed (HTTP 502)"),
    "429 with Retry-After": (Fault(kind="status", status=429, retry_after="30"), "HTTP 429"),
    "429 without Retry-After": (Fault(kind="status", status=429), "HTTP 429"),
    "hundreds of megabytes": (Fault(kind="huge", size=300 * 1024 * 1024), "larger than the limit of 8,388,608 bytes"),
    "invalid UTF-8": (Fault(kind="malformed", body='[{"actorip": "\udcff\udcfe"}]'), "not JSON"),
    "JSON of the wrong shape": (Fault(kind="malformed", body='{"records": []}'), "not a list of records"),
    "the key echoed back": (Fault(kind="status", status=400, body='{"message": "bad key ' + SECRET + '"}'), "***"),
}


@pytest.fixture
def faulty_connector(start_connector, connector_env, fake_opencti, simulator):
    simulator.api_key = SECRET
    process = start_connector(
        {
            **connector_env,
            "MALBEACON_API_KEY": SECRET,
            "MALBEACON_REQUEST_TIMEOUT": "1",
            "MALBEACON_MAX_RETRIES": "1",
            "MALBEACON_MAX_RESPONSE_MB": "8",
            "CONNECTOR_LOG_LEVEL": "debug",
        }
    )
    process.wait_registered(fake_opencti)
    return process


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))


def test_every_malbeacon_fault_ends_in_error_in_bounded_time_and_the_next_message_is_served(
    faulty_connector, connector_env, fake_opencti, simulator
):
    connector_id = connector_env["CONNECTOR_ID"]
    for index, (name, (fault, message)) in enumerate(FAULTS.items()):
        value = f"fault-{index}.example.com"
        simulator.add_fault(Fault(**{**fault.__dict__, "value": value}))
        started = time.monotonic()
        entity_id = fake_opencti.add_entity("Domain-Name", value)
        work = fake_opencti.wait_work_processed(fake_opencti.publish_enrichment(connector_id, entity_id), timeout=30)
        elapsed = time.monotonic() - started
        assert work["in_error"] is True, (name, work["message"])
        assert message in work["message"], (name, work["message"])
        assert elapsed < BOUND_SECONDS, (name, elapsed)
        follow_up = enrich(fake_opencti, connector_id, C2_DOMAIN)
        assert follow_up["in_error"] is False and "3 records" in follow_up["message"], (name, follow_up["message"])
        simulator.clear()
    assert _peak_rss_mib(faulty_connector.pid) < 250  # the 300 MB body was never held
    faulty_connector.terminate()
    output = faulty_connector.log_text()
    assert "Malbeacon request c2 'fault-0.example.com'" in output  # debug level was on
    assert SECRET not in output
    assert all(SECRET not in str(work) for work in fake_opencti.works.values())
    assert all(SECRET not in str(call.variables) for call in fake_opencti.calls)
    pushed = fake_opencti.take_pushed_messages(connector_env["CONNECTOR_ID"], timeout=10)
    assert pushed and all(SECRET not in json.dumps(decode_bundle(message)) for message in pushed)
