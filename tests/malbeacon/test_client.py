"""MalbeaconClient over real HTTP to the in-process simulator: answers, failures, time bounds, paths, secrecy."""

import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from malbeacon_connector.malbeacon import client as client_module
from malbeacon_connector.malbeacon.client import MalbeaconClient, client_from_settings
from malbeacon_connector.malbeacon.errors import (
    BadResponse,
    Cancelled,
    MalbeaconError,
    QuotaExceeded,
    Unauthorized,
    Unavailable,
)
from malbeacon_connector.malbeacon.records import parse_records
from malbeacon_connector.malbeacon.simulator import Fault, MalbeaconSimulator
from malbeacon_connector.settings import MalbeaconSettings

KEY = "SECRET-KEY-1234"
KNOWN = "203.0.113.7"
PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch):
    """No stray proxy settings: tests that want a proxy set it themselves."""
    for name in (*PROXY_VARIABLES, "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def start_simulator() -> Iterator[Callable[..., MalbeaconSimulator]]:
    """Start extra simulators (custom data or key); all are stopped at the end of the test."""
    started: list[MalbeaconSimulator] = []

    def start(data: dict | None = None, **options: object) -> MalbeaconSimulator:
        simulator = MalbeaconSimulator(data, **options).start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


@pytest.fixture
def secret_client(start_simulator, make_client) -> Callable[..., tuple[MalbeaconSimulator, MalbeaconClient]]:
    """A simulator accepting the distinctive KEY and a client of it using KEY."""

    def build(**overrides: object) -> tuple[MalbeaconSimulator, MalbeaconClient]:
        simulator = start_simulator(api_key=KEY)
        options = {"base_url": simulator.base_url, "api_key": KEY, **overrides}
        return simulator, make_client(**options)

    return build


def dead_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sample_rows(simulator: MalbeaconSimulator, value: str = KNOWN) -> list:
    return simulator.data["c2"][value]


# --- answers -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["203.0.113.7", "panel.example.net", "2001:db8::7"])
def test_known_value_returns_its_records(simulator, make_client, value):
    """A value in the data gives exactly its records."""
    rows = make_client().lookup("c2", value)
    assert rows == sample_rows(simulator, value)
    assert rows


def test_no_results_as_400_message_is_an_empty_list(simulator, make_client):
    """Malbeacon's 400 "ERROR: No Results" is a normal, empty answer."""
    assert make_client().lookup("c2", "198.51.100.250") == []
    assert len(simulator.api_requests()) == 1


def test_no_results_as_200_empty_array_is_an_empty_list(start_simulator, make_client):
    """A 200 with [] is also no results."""
    custom = start_simulator({"c2": {"x.example": []}})
    assert make_client(base_url=custom.base_url, api_key=custom.api_key).lookup("c2", "x.example") == []
    assert [request.value for request in custom.api_requests()] == ["x.example"]


# --- refusals and retries ----------------------------------------------------------------------------------------


def test_refused_key_raises_unauthorized_without_retry(simulator, make_client):
    """401 is final: Unauthorized after a single request, naming the setting to fix."""
    with pytest.raises(Unauthorized, match="MALBEACON_API_KEY"):
        make_client(api_key="wrong-key").lookup("c2", KNOWN)
    assert len(simulator.api_requests()) == 1


def test_forbidden_raises_quota_exceeded_without_retry(simulator, make_client):
    """403 is final: QuotaExceeded after a single request."""
    simulator.add_fault(Fault(kind="status", status=403))
    with pytest.raises(QuotaExceeded, match="403"):
        make_client().lookup("c2", KNOWN)
    assert len(simulator.api_requests()) == 1


@pytest.mark.parametrize("status", [403, 429, 418])
def test_terminal_escapes_in_a_server_message_never_reach_the_error(simulator, make_client, status):
    """A hostile message could retitle, clear or reorder an operator's terminal when printed."""
    body = json.dumps({"message": "quota \x1b]0;pwned\x07used \x1b[2J\u202eup\x9b31m"})
    simulator.add_fault(Fault(kind="status", status=status, body=body))
    with pytest.raises(MalbeaconError) as raised:
        make_client(max_retries=0).lookup("c2", KNOWN)
    assert "quota ]0;pwnedused [2Jup31m" in str(raised.value)
    assert all(char.isprintable() for char in str(raised.value))


@pytest.mark.parametrize(
    ("retry_after", "expected_sleep"),
    [("3", 3.0), ("3600", client_module.MAX_RETRY_AFTER_SECONDS)],
    ids=["as-given", "capped"],
)
def test_rate_limit_waits_retry_after_then_succeeds(simulator, make_client, retry_after, expected_sleep):
    """A 429 is retried after its Retry-After, capped at MAX_RETRY_AFTER_SECONDS."""
    sleeps: list[float] = []
    simulator.add_fault(Fault(kind="status", status=429, retry_after=retry_after, times=1))
    rows = make_client(timeout=10.0, sleep=sleeps.append).lookup("c2", KNOWN)
    assert rows == sample_rows(simulator)
    assert sleeps == [expected_sleep]
    assert len(simulator.api_requests()) == 2


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_rate_limit_beyond_retries_raises_quota_exceeded(simulator, make_client, max_retries):
    """A 429 on every attempt ends in QuotaExceeded after max_retries + 1 requests."""
    simulator.add_fault(Fault(kind="status", status=429))
    with pytest.raises(QuotaExceeded, match="429"):
        make_client(max_retries=max_retries).lookup("c2", KNOWN)
    assert len(simulator.api_requests()) == max_retries + 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_until_success(simulator, make_client, status):
    """Two 5xx then a good answer: success on the third request with max_retries=2."""
    simulator.add_fault(Fault(kind="status", status=status, times=2))
    assert make_client(max_retries=2).lookup("c2", KNOWN) == sample_rows(simulator)
    assert len(simulator.api_requests()) == 3


def test_server_error_storm_raises_unavailable(simulator, make_client):
    """5xx on every attempt: Unavailable after max_retries + 1 requests."""
    simulator.add_fault(Fault(kind="status", status=503))
    with pytest.raises(Unavailable, match="503"):
        make_client(max_retries=2).lookup("c2", KNOWN)
    assert len(simulator.api_requests()) == 3


# --- unreadable answers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [None, '{"records": []}', '"a string"', "42"],
    ids=["html", "json-object", "json-string", "json-number"],
)
def test_unreadable_success_body_raises_bad_response_without_retry(simulator, make_client, body):
    """A 200 that is not JSON, or JSON that is not a list, is a BadResponse after one request."""
    simulator.add_fault(Fault(kind="malformed", body=body))
    with pytest.raises(BadResponse):
        make_client().lookup("c2", KNOWN)
    assert len(simulator.api_requests()) == 1


def test_body_over_the_size_limit_raises_bad_response(simulator, make_client):
    """A body one byte over max_response_bytes is refused; one exactly at the limit is read."""
    size = len(json.dumps(sample_rows(simulator)).encode("utf-8"))
    assert make_client(max_response_bytes=size).lookup("c2", KNOWN) == sample_rows(simulator)
    with pytest.raises(BadResponse, match="larger than the limit"):
        make_client(max_response_bytes=size - 1).lookup("c2", KNOWN)


def test_unexpected_status_raises_bad_response(simulator, make_client):
    """A 4xx other than no-results, 401, 403 and 429 is a BadResponse, not retried."""
    simulator.add_fault(Fault(kind="status", status=418, body=json.dumps({"message": "teapot"})))
    with pytest.raises(BadResponse, match="418: teapot"):
        make_client().lookup("c2", KNOWN)
    assert len(simulator.api_requests()) == 1


# --- time bounds and network failures ----------------------------------------------------------------------------


def timed_failure(client: MalbeaconClient, value: str = KNOWN) -> tuple[MalbeaconError, float]:
    """The error a lookup raises and the seconds it took."""
    started = time.monotonic()
    with pytest.raises(MalbeaconError) as caught:
        client.lookup("c2", value)
    return caught.value, time.monotonic() - started


def test_hanging_server_gives_unavailable_within_the_timeout(simulator, make_client):
    """A server that never answers costs about one timeout, then Unavailable."""
    simulator.add_fault(Fault(kind="hang"))
    error, elapsed = timed_failure(make_client(timeout=0.5, max_retries=0))
    assert isinstance(error, Unavailable)
    assert elapsed < 2.0


@pytest.mark.parametrize("seconds_per_byte", [0.1, 1.0], ids=["drip-under-read-timeout", "drip-over-read-timeout"])
def test_trickling_body_is_cut_at_the_attempt_deadline(simulator, make_client, seconds_per_byte):
    """A body sent byte by byte slower than the timeout allows ends in Unavailable at about the timeout."""
    simulator.add_fault(Fault(kind="trickle", seconds=seconds_per_byte))
    error, elapsed = timed_failure(make_client(timeout=0.5, max_retries=0))
    assert isinstance(error, Unavailable)
    assert elapsed < 0.5 + 1.0


def test_connection_reset_mid_body_gives_unavailable(simulator, make_client):
    """A connection closed in the middle of the body is retried, then Unavailable."""
    simulator.add_fault(Fault(kind="reset"))
    error, _ = timed_failure(make_client(max_retries=1))
    assert isinstance(error, Unavailable)
    assert len(simulator.api_requests()) == 2


def test_connection_refused_gives_unavailable(make_client):
    """Nothing listening at the base URL: Unavailable naming what to check."""
    error, elapsed = timed_failure(make_client(base_url=f"http://127.0.0.1:{dead_port()}/v1"))
    assert isinstance(error, Unavailable)
    assert "MALBEACON_API_BASE_URL" in str(error)
    assert elapsed < 5.0


@pytest.mark.parametrize(
    ("fault", "min_requests"),
    [
        (Fault(kind="hang"), 2),
        (Fault(kind="slow", seconds=5.0), 2),
        (Fault(kind="status", status=503), 3),
    ],
    ids=["hang", "slow", "5xx"],
)
def test_lookup_time_is_bounded_by_timeout_times_attempts_with_real_backoff(
    simulator, make_client, fault, min_requests
):
    """With real back-off sleeps, retries happen yet the lookup ends within timeout x (retries + 1)."""
    timeout, max_retries = 1.0, 2
    simulator.add_fault(fault)
    error, elapsed = timed_failure(make_client(timeout=timeout, max_retries=max_retries, sleep=time.sleep))
    assert isinstance(error, Unavailable)
    assert elapsed <= timeout * (max_retries + 1) + 0.5
    assert len(simulator.api_requests()) >= min_requests


# --- paths -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/"], ids=["no-trailing-slash", "trailing-slash"])
def test_base_url_with_or_without_trailing_slash_requests_the_same_path(simulator, make_client, suffix):
    """`.../v1` and `.../v1/` both request /v1/c2/c2/<value>."""
    assert make_client(base_url=simulator.base_url + suffix).lookup("c2", KNOWN) == sample_rows(simulator)
    assert [request.path for request in simulator.api_requests()] == [f"/v1/c2/c2/{KNOWN}"]


@pytest.mark.parametrize(
    "value",
    [
        "a/b",
        "../../etc/passwd",
        "a/../b",
        "...",
        "what?x=1",
        "frag#ment",
        "with space",
        "100%",
        "%2F%2e%2e",
        "münchen.example",
        "日本.example",
        "http://evil.example/p/hear.php?a=1&amp;b=2#top",
        "back\\slash",
    ],
)
def test_value_reaches_the_server_as_exactly_one_path_segment(simulator, make_client, value):
    """Characters that mean something in a URL never change the path requested."""
    assert make_client().lookup("c2", value) == []
    [request] = simulator.api_requests()
    assert (request.endpoint, request.value) == ("c2", value)
    assert len(request.path.split("/")) == 5
    assert "?" not in request.path and "#" not in request.path


@pytest.mark.parametrize(
    ("endpoint", "value"),
    [("c2", ""), ("c2", "."), ("c2", ".."), ("c2", "  "), ("c2", " .. "), ("nope", KNOWN), ("", KNOWN)],
)
def test_unusable_lookup_raises_value_error_before_any_request(simulator, make_client, endpoint, value):
    """Empty or dot values, and unknown endpoints, are refused locally."""
    with pytest.raises(ValueError):
        make_client().lookup(endpoint, value)
    assert simulator.api_requests() == []


def test_other_endpoints_use_their_own_path(simulator, make_client):
    """lookup(endpoint, value) requests /v1/c2/<endpoint>/<value>."""
    make_client().lookup("actorip", "198.51.100.23")
    assert [request.path for request in simulator.api_requests()] == ["/v1/c2/actorip/198.51.100.23"]


# --- the API key -------------------------------------------------------------------------------------------------


def test_api_key_travels_in_the_header_only(secret_client):
    """The key is sent as X-Api-Key and appears in no request path."""
    simulator, client = secret_client()
    assert client.lookup("c2", KNOWN) == sample_rows(simulator)
    [request] = simulator.api_requests()
    assert request.api_key == KEY
    assert request.headers["Accept"] == "application/json"
    assert KEY not in request.path


def echoing(status: int) -> Fault:
    """A fault answering `status` with a message that echoes the API key."""
    return Fault(kind="status", status=status, body=json.dumps({"message": f"bad key {KEY}"}))


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (echoing(400), BadResponse),
        (echoing(401), Unauthorized),
        (echoing(403), QuotaExceeded),
        (echoing(429), QuotaExceeded),
        (echoing(503), Unavailable),
        (Fault(kind="malformed", body=f"<html>{KEY}</html>"), BadResponse),
        (Fault(kind="malformed", body=json.dumps({"message": KEY})), BadResponse),
        (Fault(kind="hang"), Unavailable),
        (Fault(kind="reset"), Unavailable),
        (None, Unavailable),
    ],
    ids=["400", "401", "403", "429", "503", "html", "json-object", "hang", "reset", "refused"],
)
def test_api_key_is_in_no_error_message_nor_debug_log(secret_client, caplog, fault, expected):
    """Whatever goes wrong, neither the exception text nor any DEBUG log record reveals the key."""
    caplog.set_level(logging.DEBUG)
    overrides = {"timeout": 0.5} if fault is None or fault.kind == "hang" else {}
    if fault is None:
        overrides["base_url"] = f"http://127.0.0.1:{dead_port()}/v1"
    simulator, client = secret_client(**overrides)
    if fault is not None:
        simulator.add_fault(fault)
    with pytest.raises(expected) as caught:
        client.lookup("c2", KNOWN)
    assert KEY not in str(caught.value)
    assert caplog.records
    assert KEY not in caplog.text
    assert all(KEY not in record.getMessage() for record in caplog.records)


def test_key_echoed_by_the_server_is_masked_in_the_message(secret_client):
    """An unexpected answer quoting the key keeps its message, with the key replaced by ***."""
    simulator, client = secret_client()
    simulator.add_fault(echoing(400))
    with pytest.raises(BadResponse) as caught:
        client.lookup("c2", KNOWN)
    assert "bad key ***" in str(caught.value)
    assert KEY not in str(caught.value)


def test_key_cut_by_the_message_length_limit_is_not_partly_revealed(secret_client):
    """A long server message whose cut falls inside the key reveals no leading part of it."""
    simulator, client = secret_client()
    padding = "x" * (client_module._MESSAGE_CHARS - 1 - len(KEY) // 2)
    simulator.add_fault(Fault(kind="status", status=400, body=json.dumps({"message": f"{padding} {KEY}"})))
    with pytest.raises(BadResponse) as caught:
        client.lookup("c2", KNOWN)
    assert KEY[: len(KEY) // 2] not in str(caught.value)


# --- settings ----------------------------------------------------------------------------------------------------


def test_client_from_settings_uses_url_key_and_retries(simulator):
    """The settings' base URL and key give a working client, and its max_retries is applied."""
    settings = MalbeaconSettings(
        api_key=simulator.api_key, api_base_url=simulator.base_url, request_timeout=2, max_retries=1, cache_ttl=0
    )
    client = client_from_settings(settings)
    try:
        assert client.lookup("c2", KNOWN) == sample_rows(simulator)
        simulator.add_fault(Fault(kind="status", status=503))
        with pytest.raises(Unavailable):
            client.lookup("c2", KNOWN)
    finally:
        client.close()
    assert len(simulator.api_requests()) == 1 + 2


# --- proxies -----------------------------------------------------------------------------------------------------


class _ForwardProxyHandler(BaseHTTPRequestHandler):
    """A plain-HTTP forward proxy: records absolute-URI GETs and relays them, itself without a proxy."""

    seen: list[str]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.seen.append(self.path)
        headers = {name: value for name, value in self.headers.items() if name in ("X-Api-Key", "Accept")}
        try:
            with self.opener.open(urllib.request.Request(self.path, headers=headers), timeout=5) as answer:
                status, body = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def forward_proxy() -> Iterator[tuple[str, list[str]]]:
    """A running forward proxy on loopback: its URL and the request targets it received."""
    seen: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_ForwardProxyHandler,), {"seen": seen}))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def set_http_proxy(monkeypatch, url: str) -> None:
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.setenv("http_proxy", url)


def test_lookup_goes_through_the_http_proxy_of_the_environment(simulator, make_client, monkeypatch):
    """HTTP_PROXY is honoured: the proxy receives the absolute URI and the answer is relayed."""
    with forward_proxy() as (proxy_url, seen):
        set_http_proxy(monkeypatch, proxy_url)
        assert make_client().lookup("c2", KNOWN) == sample_rows(simulator)
    assert seen == [f"{simulator.base_url}/c2/c2/{KNOWN}"]
    assert [request.api_key for request in simulator.api_requests()] == [simulator.api_key]


def test_no_proxy_bypasses_a_dead_proxy(simulator, make_client, monkeypatch):
    """With NO_PROXY=127.0.0.1 the lookup goes direct even though HTTP_PROXY is unreachable."""
    set_http_proxy(monkeypatch, f"http://127.0.0.1:{dead_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert make_client().lookup("c2", KNOWN) == sample_rows(simulator)
    assert len(simulator.api_requests()) == 1


def test_dead_proxy_gives_unavailable_pointing_at_proxy_settings(simulator, make_client, monkeypatch):
    """An unreachable proxy (not bypassed) is Unavailable, and the message mentions the proxy settings."""
    set_http_proxy(monkeypatch, f"http://127.0.0.1:{dead_port()}")
    error, _ = timed_failure(make_client())
    assert isinstance(error, Unavailable)
    assert "proxy" in str(error)
    assert simulator.api_requests() == []


def test_headers_trickling_in_are_cut_at_the_deadline(simulator, make_client):
    """requests' timeouts bound each read; the watchdog bounds the whole request, headers included."""
    simulator.add_fault(Fault(kind="slow-headers", seconds=0.2))
    client = make_client(timeout=1.0, max_retries=0)
    started = time.monotonic()
    with pytest.raises(Unavailable, match="did not answer within 1 s"):
        client.lookup("c2", "203.0.113.7")
    assert time.monotonic() - started < 3


def test_cancel_cuts_a_hanging_lookup_short_and_refuses_later_ones(simulator, make_client):
    simulator.add_fault(Fault(kind="hang"))
    client = make_client(timeout=30.0, max_retries=2)
    outcome: list[BaseException] = []

    def look_up() -> None:
        try:
            client.lookup("c2", "203.0.113.7")
        except MalbeaconError as error:
            outcome.append(error)

    worker = threading.Thread(target=look_up)
    started = time.monotonic()
    worker.start()
    time.sleep(0.5)
    client.cancel()
    worker.join(timeout=10)
    assert not worker.is_alive() and time.monotonic() - started < 5
    assert isinstance(outcome[0], Cancelled) and "enrich the value again" in str(outcome[0])
    with pytest.raises(Cancelled):
        client.lookup("c2", "panel.example.net")
    assert len(simulator.api_requests()) == 1


def test_an_unreadable_retry_after_falls_back_to_back_off(simulator, make_client):
    sleeps: list[float] = []
    simulator.add_fault(Fault(kind="status", status=429, retry_after="NaN", times=1))
    assert make_client(sleep=sleeps.append).lookup("c2", "203.0.113.7")
    assert sleeps == [0.5]


@pytest.mark.parametrize("body", ["[" * 100_000, "[" + "1" * 5000 + "]"])
def test_pathological_json_is_a_bad_response_or_text_never_a_crash(simulator, make_client, body):
    simulator.add_fault(Fault(kind="malformed", body=body))
    try:
        rows = make_client().lookup("c2", "203.0.113.7")
    except BadResponse:
        return
    assert rows == ["1" * 5000]  # an integer too long for Python is kept as its text


def test_a_huge_number_in_one_record_loses_only_that_field(simulator, make_client):
    body = '[{"actorip": ' + "9" * 5000 + ', "tags": "x"}, {"actorip": "192.0.2.1"}]'
    simulator.add_fault(Fault(kind="malformed", body=body))
    parsed = parse_records(make_client().lookup("c2", "203.0.113.7"))
    assert [record.actor_ip.value for record in parsed.records if record.actor_ip] == ["192.0.2.1"]
    assert parsed.dropped == {"actorip: longer than 2048 characters": 1}
