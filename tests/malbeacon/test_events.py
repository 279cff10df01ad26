"""What the client tells its observer: one outcome per HTTP request, cache hits, one time per lookup sent."""

import contextlib

import pytest

from malbeacon_connector.malbeacon.cache import AnswerCache
from malbeacon_connector.malbeacon.errors import MalbeaconError
from malbeacon_connector.malbeacon.simulator import Fault

KNOWN, UNKNOWN = "203.0.113.7", "198.51.100.250"


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.cache_hits: list[str] = []
        self.lookups: list[tuple[str, float]] = []

    def request(self, endpoint: str, outcome: str) -> None:
        self.requests.append((endpoint, outcome))

    def cache_hit(self, endpoint: str) -> None:
        self.cache_hits.append(endpoint)

    def lookup(self, endpoint: str, seconds: float) -> None:
        self.lookups.append((endpoint, seconds))


@pytest.mark.parametrize(
    ("fault", "value", "outcomes"),
    [
        (None, KNOWN, ["found"]),
        (None, UNKNOWN, ["no_results"]),
        (Fault(kind="status", status=503, times=1), KNOWN, ["error", "found"]),
        (Fault(kind="status", status=429, retry_after="0", times=1), KNOWN, ["rate_limited", "found"]),
        (Fault(kind="status", status=403, times=1), KNOWN, ["rate_limited"]),
        (Fault(kind="status", status=500), KNOWN, ["error", "error", "error"]),
        (Fault(kind="malformed", times=1), KNOWN, ["error"]),
    ],
    ids=["found", "no-results", "503-then-found", "429-then-found", "403", "500-thrice", "not-json"],
)
def test_each_request_is_told_with_its_outcome(simulator, make_client, fault, value, outcomes):
    if fault is not None:
        simulator.add_fault(fault)
    events = Recorder()
    client = make_client(events=events)
    with contextlib.suppress(MalbeaconError):
        client.lookup("c2", value)
    assert events.requests == [("c2", outcome) for outcome in outcomes]
    assert len(simulator.api_requests()) == len(outcomes)
    assert [endpoint for endpoint, _ in events.lookups] == ["c2"]
    assert all(seconds >= 0 for _, seconds in events.lookups)


def test_a_refused_key_is_told_as_unauthorized(simulator, make_client):
    events = Recorder()
    with pytest.raises(MalbeaconError):
        make_client(events=events, api_key="wrong").lookup("actorip", KNOWN)
    assert events.requests == [("actorip", "unauthorized")]


def test_a_cache_hit_is_told_and_costs_no_request_nor_lookup_time(simulator, make_client):
    events = Recorder()
    client = make_client(events=events, cache=AnswerCache(ttl=3600))
    client.lookup("c2", KNOWN)
    client.lookup("c2", KNOWN)
    assert events.requests == [("c2", "found")] and events.cache_hits == ["c2"]
    assert len(events.lookups) == 1
