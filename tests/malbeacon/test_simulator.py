"""The Malbeacon API simulator: contract answers, request recording, faults, control endpoints and its CLI."""

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from malbeacon_connector.cli import EXIT_USAGE, main
from malbeacon_connector.malbeacon.simulator import DEFAULT_API_KEY, Fault, MalbeaconSimulator, read_data_file

KNOWN = "203.0.113.7"
UNKNOWN = "198.51.100.250"
FILE_DATA = {"c2": {"file.example": [{"actorip": "192.0.2.9", "c2": "http://file.example/gate.php"}]}}


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A plain HTTP session that ignores any proxy settings of the environment."""
    with requests.Session() as session:
        session.trust_env = False
        yield session


def get(
    http: requests.Session, base: str, path: str, key: str | None = DEFAULT_API_KEY, timeout: float = 5.0
) -> requests.Response:
    """GET `path` on the server at `base` (scheme, host and port), with the key header unless it is None."""
    return http.get(base + path, headers={} if key is None else {"X-Api-Key": key}, timeout=timeout)


def origin(simulator: MalbeaconSimulator) -> str:
    return f"http://127.0.0.1:{simulator.port}"


def lookup(
    http: requests.Session, simulator: MalbeaconSimulator, value: str = KNOWN, endpoint: str = "c2", **options: object
) -> requests.Response:
    """GET /v1/c2/<endpoint>/<value> with the value percent-encoded as one segment."""
    return get(http, origin(simulator), f"/v1/c2/{endpoint}/{quote(value, safe='')}", **options)


# --- the contract ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["203.0.113.7", "panel.example.net", "2001:db8::7"])
def test_known_value_is_answered_200_with_its_records(simulator, http, value):
    """A value of the data is answered 200 with its JSON list of records."""
    response = lookup(http, simulator, value)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == simulator.data["c2"][value]
    assert isinstance(response.json(), list) and response.json()


@pytest.mark.parametrize(("endpoint", "value"), [("c2", UNKNOWN), ("actorip", KNOWN), ("c2asnorg", "64500")])
def test_unknown_value_is_answered_400_no_results(simulator, http, endpoint, value):
    """Values not in the data (or under another endpoint) get Malbeacon's 400 "ERROR: No Results"."""
    response = lookup(http, simulator, value, endpoint)
    assert response.status_code == 400
    assert response.json() == {"message": "ERROR: No Results"}


def test_empty_list_in_the_data_is_answered_200_empty(http):
    """A value whose data is [] is answered 200 [] (not 400)."""
    with MalbeaconSimulator({"c2": {"x.example": []}}) as custom:
        response = lookup(http, custom, "x.example")
    assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize(
    "key", [None, "", "wrong-key", DEFAULT_API_KEY.upper()], ids=["missing", "empty", "wrong", "case"]
)
def test_missing_or_wrong_key_is_answered_401(simulator, http, key):
    """Only the exact configured key is accepted."""
    response = lookup(http, simulator, key=key)
    assert response.status_code == 401
    assert response.json() == {"message": "ERROR: Unauthorized"}


def test_custom_key_is_the_one_accepted(http):
    """A simulator built with api_key accepts that key and refuses the default one."""
    with MalbeaconSimulator(api_key="custom-key") as custom:
        assert lookup(http, custom, key="custom-key").status_code == 200
        assert lookup(http, custom, key=DEFAULT_API_KEY).status_code == 401


@pytest.mark.parametrize(
    "path",
    ["/", "/v1", "/v1/c2", "/v1/c2/c2", f"/v1/c2/c2/{KNOWN}/extra", f"/v2/c2/c2/{KNOWN}", f"/v1/xx/c2/{KNOWN}"],
)
def test_path_not_of_the_api_shape_is_answered_404(simulator, http, path):
    """Only /v1/c2/<endpoint>/<value> is the API; anything else is 404, even with a good key."""
    response = get(http, origin(simulator), path)
    assert response.status_code == 404
    assert response.json() == {"message": "ERROR: Not Found"}
    assert simulator.api_requests() == []
    assert [request.path for request in simulator.requests] == [path]


def test_requests_are_recorded_with_endpoint_decoded_value_and_key(simulator, http):
    """Each API request is recorded with its endpoint, its percent-decoded value and the key sent."""
    lookup(http, simulator, "a/b c", key="k-1")
    lookup(http, simulator, "panel.example.net", endpoint="actorip", key=None)
    assert [(r.method, r.endpoint, r.value, r.api_key) for r in simulator.api_requests()] == [
        ("GET", "c2", "a/b c", "k-1"),
        ("GET", "actorip", "panel.example.net", None),
    ]
    assert simulator.api_requests()[0].path == "/v1/c2/c2/a%2Fb%20c"
    assert simulator.api_requests()[0].headers["X-Api-Key"] == "k-1"


# --- faults ------------------------------------------------------------------------------------------------------


def test_fault_applies_to_its_endpoint_and_value_only_and_expires_after_times(simulator, http):
    """A targeted fault hits only its (endpoint, value), `times` times, then the normal answer returns."""
    simulator.add_fault(Fault(kind="status", status=503, endpoint="c2", value=KNOWN, times=2))
    statuses = [
        lookup(http, simulator, "panel.example.net").status_code,
        lookup(http, simulator, KNOWN, endpoint="c2ip").status_code,
        *(lookup(http, simulator, KNOWN).status_code for _ in range(3)),
    ]
    assert statuses == [200, 400, 503, 503, 200]
    assert simulator.faults == []


def test_wildcard_fault_without_times_applies_to_every_lookup(simulator, http):
    """A fault with the default "*" endpoint and value and no `times` applies to every lookup, for good."""
    simulator.add_fault(Fault(kind="status", status=418))
    targets = [("c2", KNOWN), ("c2", KNOWN), ("tags", "x"), ("c2", UNKNOWN)]
    statuses = {lookup(http, simulator, value, endpoint).status_code for endpoint, value in targets}
    assert statuses == {418}
    assert len(simulator.faults) == 1


def test_faults_do_not_bypass_the_key_check(simulator, http):
    """A request with a wrong key is answered 401 and does not use up a fault."""
    simulator.add_fault(Fault(kind="status", status=503, times=1))
    assert lookup(http, simulator, key="wrong").status_code == 401
    assert lookup(http, simulator).status_code == 503


def test_unknown_fault_kind_raises_value_error():
    """Fault kinds are checked when the fault is made."""
    with pytest.raises(ValueError, match="unknown fault kind 'explode'"):
        Fault(kind="explode")


def test_status_fault_sends_its_body_and_retry_after(simulator, http):
    """A status fault answers its status, its body and its Retry-After header."""
    simulator.add_fault(Fault(kind="status", status=429, body='{"message": "slow down"}', retry_after="7"))
    response = lookup(http, simulator)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json() == {"message": "slow down"}


def test_status_fault_default_body_names_the_status(simulator, http):
    """Without a body, a status fault sends a JSON message naming the status and no Retry-After."""
    simulator.add_fault(Fault(kind="status", status=502))
    response = lookup(http, simulator)
    assert (response.status_code, response.json()) == (502, {"message": "simulated HTTP 502"})
    assert "Retry-After" not in response.headers


def timed_lookup(http: requests.Session, simulator: MalbeaconSimulator) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = lookup(http, simulator)
    return response, time.monotonic() - started


def test_slow_fault_delays_the_normal_answer(simulator, http):
    """A slow fault waits its seconds, then answers normally."""
    simulator.add_fault(Fault(kind="slow", seconds=0.3))
    response, elapsed = timed_lookup(http, simulator)
    assert response.json() == simulator.data["c2"][KNOWN]
    assert 0.3 <= elapsed < 3.0


def test_trickle_fault_sends_the_whole_body_slowly(simulator, http):
    """A trickle fault sends a valid JSON list one byte every `seconds`."""
    simulator.add_fault(Fault(kind="trickle", seconds=0.02))
    response, elapsed = timed_lookup(http, simulator)
    assert response.json() == [{"actorip": "192.0.2.1"}]
    assert elapsed >= 0.02 * (len(response.content) - 1)


def test_hang_fault_never_answers(simulator, http):
    """A hanging request gets no answer within the client's timeout."""
    simulator.add_fault(Fault(kind="hang"))
    with pytest.raises(requests.ReadTimeout):
        lookup(http, simulator, timeout=0.5)


def test_malformed_fault_answers_200_with_a_non_json_body(simulator, http):
    """A malformed fault answers 200 with HTML by default, or with the body given."""
    simulator.add_fault(Fault(kind="malformed", times=1))
    simulator.add_fault(Fault(kind="malformed", body="{not json", times=1))
    first, second = lookup(http, simulator), lookup(http, simulator)
    assert (first.status_code, first.text) == (200, "<html><body>Bad Gateway</body></html>")
    assert (second.status_code, second.text) == (200, "{not json")


def test_reset_fault_breaks_the_connection_mid_body(simulator, http):
    """A reset fault announces a body it never finishes sending."""
    simulator.add_fault(Fault(kind="reset"))
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        lookup(http, simulator)


# --- control endpoints -------------------------------------------------------------------------------------------


def control(http: requests.Session, simulator: MalbeaconSimulator, method: str, route: str, **options: object):
    return http.request(method, f"{origin(simulator)}/_sim/{route}", timeout=5, **options)


def test_fault_posted_over_http_is_applied(simulator, http):
    """POST /_sim/faults with a JSON fault adds it, with every field honoured."""
    fault = {"kind": "status", "status": 429, "retry_after": "7", "value": KNOWN, "times": 1}
    response = control(http, simulator, "POST", "faults", json=fault)
    assert (response.status_code, response.json()) == (200, {"added": True})
    limited = lookup(http, simulator)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
    assert lookup(http, simulator).status_code == 200


@pytest.mark.parametrize(
    "body",
    [json.dumps({"kind": "explode"}), json.dumps({"kind": "status", "colour": "red"}), "not json", "[1, 2]"],
    ids=["unknown-kind", "unknown-field", "not-json", "not-an-object"],
)
def test_invalid_fault_posted_over_http_is_refused_with_400(simulator, http, body):
    """A fault that cannot be built is answered 400 with a message, and nothing is added."""
    response = control(http, simulator, "POST", "faults", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["message"]
    assert simulator.faults == []


def test_requests_listed_over_http_are_the_api_requests(simulator, http):
    """GET /_sim/requests lists the API requests (not control ones) with their fields."""
    lookup(http, simulator, "panel.example.net")
    get(http, origin(simulator), "/elsewhere")
    listed = control(http, simulator, "GET", "requests").json()
    assert [(r["endpoint"], r["value"], r["api_key"], r["path"]) for r in listed] == [
        ("c2", "panel.example.net", DEFAULT_API_KEY, "/v1/c2/c2/panel.example.net")
    ]


@pytest.mark.parametrize("route", ["requests", "faults"])
def test_delete_clears_recorded_requests_and_faults(simulator, http, route):
    """DELETE /_sim/requests (or /_sim/faults) forgets the requests and the faults."""
    simulator.add_fault(Fault(kind="status", status=503, value=UNKNOWN))
    lookup(http, simulator)
    response = control(http, simulator, "DELETE", route)
    assert (response.status_code, response.json()) == (200, {"cleared": True})
    assert control(http, simulator, "GET", "requests").json() == []
    assert simulator.faults == []
    assert lookup(http, simulator, UNKNOWN).status_code == 400


@pytest.mark.parametrize(("method", "route"), [("GET", "faults"), ("POST", "requests"), ("GET", "nothing")])
def test_unknown_control_route_is_answered_404(simulator, http, method, route):
    """Control routes other than the documented method/route pairs are 404."""
    assert control(http, simulator, method, route).status_code == 404


# --- data files --------------------------------------------------------------------------------------------------


def write_json(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_read_data_file_returns_a_well_shaped_file(tmp_path):
    """A file shaped {endpoint: {value: [records]}} is read as is."""
    assert read_data_file(write_json(tmp_path / "data.json", FILE_DATA)) == FILE_DATA


@pytest.mark.parametrize(
    "document",
    [[], "text", {"c2": []}, {"c2": {"x": []}, "tags": 3}],
    ids=["list", "string", "endpoint-is-list", "one-endpoint-not-a-mapping"],
)
def test_read_data_file_rejects_a_file_of_the_wrong_shape(tmp_path, document):
    """Anything but a mapping of mappings is refused with the expected shape in the message."""
    with pytest.raises(ValueError, match="expected"):
        read_data_file(write_json(tmp_path / "data.json", document))


def test_simulate_command_with_bad_data_file_exits_2(tmp_path, capsys):
    """`simulate --data` of a wrong-shaped file is a usage error, naming --data."""
    assert main(["simulate", "--data", str(write_json(tmp_path / "bad.json", []))]) == EXIT_USAGE
    assert "--data" in capsys.readouterr().err


# --- the command line, as its own process ------------------------------------------------------------------------


def first_line(stream, seconds: float) -> str:
    """The first line of `stream`, or "" if none arrives within `seconds`."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=seconds)
    except queue.Empty:
        return ""


@contextmanager
def simulate_process(*options: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`python -m malbeacon_connector simulate --port 0 ...` running: the process and its origin URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "malbeacon_connector", "simulate", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ),
    )
    try:
        line = first_line(process.stdout, 20.0)
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)/v1\b", line)
        assert found, f"unexpected first line: {line!r}"
        yield process, found.group(1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        process.stdout.close()


def test_simulate_command_serves_and_stops_on_sigterm(http):
    """The CLI announces its URL, answers the API, and exits 0 within 10 s of SIGTERM."""
    with simulate_process() as (process, base):
        response = get(http, base, f"/v1/c2/c2/{KNOWN}")
        assert response.status_code == 200 and response.json()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_simulate_command_serves_the_data_file_with_the_key_given(http, tmp_path):
    """`simulate --data FILE --api-key K` answers from FILE (not the sample) to key K."""
    data_file = write_json(tmp_path / "data.json", FILE_DATA)
    with simulate_process("--data", str(data_file), "--api-key", "file-key") as (_, base):
        assert get(http, base, "/v1/c2/c2/file.example", key="file-key").json() == FILE_DATA["c2"]["file.example"]
        assert get(http, base, f"/v1/c2/c2/{KNOWN}", key="file-key").status_code == 400
        assert get(http, base, "/v1/c2/c2/file.example").status_code == 401
