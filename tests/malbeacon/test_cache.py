"""Sparing the quota: the answer cache, the rate limit, and the limits on what is read and kept."""

import logging
import threading
import time

import pytest

from malbeacon_connector.malbeacon.cache import AnswerCache, RateLimiter
from malbeacon_connector.malbeacon.client import MalbeaconClient, client_from_settings
from malbeacon_connector.malbeacon.errors import BadResponse, Unavailable
from malbeacon_connector.malbeacon.simulator import Fault, MalbeaconSimulator
from malbeacon_connector.pipeline import entity_for_value, look_up
from malbeacon_connector.settings import MalbeaconSettings


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wait(self, event: threading.Event, seconds: float) -> bool:
        self.now += seconds
        return event.is_set()


def test_cache_answers_until_its_ttl_expires():
    clock = Clock()
    cache = AnswerCache(ttl=60, clock=clock)
    cache.put("c2", "a", b"[1]")
    clock.now += 59
    assert cache.get("c2", "a") == b"[1]"
    clock.now += 1
    assert cache.get("c2", "a") is None and len(cache) == 0


def test_cache_is_bounded_in_entries_and_bytes_least_recently_used_out():
    cache = AnswerCache(ttl=60, max_entries=2, max_bytes=10)
    cache.put("c2", "a", b"aaa")
    cache.put("c2", "b", b"bbb")
    assert cache.get("c2", "a") == b"aaa"  # now the most recently used
    cache.put("c2", "c", b"ccc")
    assert (cache.get("c2", "a"), cache.get("c2", "b"), cache.get("c2", "c")) == (b"aaa", None, b"ccc")
    cache.put("c2", "d", b"dddddddd")
    assert len(cache) == 1 and cache.get("c2", "d") == b"dddddddd"
    cache.put("c2", "e", b"x" * 11)  # larger than the whole cache: not kept
    assert cache.get("c2", "e") is None


def test_a_ttl_of_zero_disables_the_cache():
    cache = AnswerCache(ttl=0)
    cache.put("c2", "a", b"[]")
    assert cache.get("c2", "a") is None and not cache.enabled


def settings_for(simulator: MalbeaconSimulator, **values: object) -> MalbeaconSettings:
    return MalbeaconSettings(api_key=simulator.api_key, api_base_url=simulator.base_url, **values)


def test_re_enriching_within_the_ttl_costs_no_api_call_found_or_not(simulator):
    client = client_from_settings(settings_for(simulator))
    for value in ("203.0.113.7", "198.51.100.250"):
        first = look_up(client, entity_for_value(value, "IPv4-Addr", "TLP:CLEAR"), ["c2"])
        again = look_up(client, entity_for_value(value, "IPv4-Addr", "TLP:CLEAR"), ["c2"])
        assert (first.api_calls, first.cached, again.api_calls, again.cached) == (1, 0, 0, 1)
        assert [r.seen_at for r in again.parsed.records] == [r.seen_at for r in first.parsed.records]
        assert again.summary().endswith("[0 API calls, 1 answered by the cache]")
    assert len(simulator.api_requests()) == 2


def test_failures_are_never_cached(simulator):
    client = client_from_settings(settings_for(simulator, max_retries=0))
    simulator.add_fault(Fault(kind="status", status=503, times=1))
    with pytest.raises(Unavailable):
        client.lookup("c2", "203.0.113.7")
    assert len(client.lookup("c2", "203.0.113.7")) == 6
    assert len(simulator.api_requests()) == 2


def test_the_cache_is_per_endpoint_and_can_be_switched_off(simulator):
    client = client_from_settings(settings_for(simulator, cache_ttl=0))
    client.lookup("c2", "198.51.100.23")
    client.lookup("c2", "198.51.100.23")
    shared = client_from_settings(settings_for(simulator))
    shared.lookup("c2", "198.51.100.23")
    shared.lookup("actorip", "198.51.100.23")
    assert [r.endpoint for r in simulator.api_requests()] == ["c2", "c2", "c2", "actorip"]


def test_the_rate_limit_defers_requests_and_says_so(caplog):
    clock = Clock()
    limiter = RateLimiter(2, clock=clock, wait=clock.wait)
    cancelled = threading.Event()
    with caplog.at_level(logging.WARNING):
        waits = [limiter.acquire(cancelled) for _ in range(3)]
    assert waits == [0.0, 0.0, 60.0]
    assert "rate limit (2 requests per minute) reached: waiting 60.0 s" in caplog.text
    assert RateLimiter(0).acquire(cancelled) == 0.0


def test_a_cancelled_wait_for_the_rate_limit_returns_at_once():
    clock = Clock()
    limiter = RateLimiter(1, clock=clock, wait=clock.wait)
    cancelled = threading.Event()
    limiter.acquire(cancelled)
    cancelled.set()
    assert limiter.acquire(cancelled) == 0.0


def test_the_response_size_limit_is_a_setting(simulator):
    simulator.add_fault(Fault(kind="malformed", body="[" + ",".join(['{"actorip": "192.0.2.1"}'] * 50_000) + "]"))
    with pytest.raises(BadResponse, match="larger than the limit of 1,048,576 bytes"):
        client_from_settings(settings_for(simulator, max_response_mb=1)).lookup("c2", "203.0.113.7")


def test_only_the_newest_records_are_kept_and_the_rest_are_named():
    rows = [{"tstamp": f"2021-01-{day:02d} 00:00:00", "actorip": f"192.0.2.{day}"} for day in range(1, 11)]
    rows.append({"tstamp": "NA", "actorip": "192.0.2.99"})
    with MalbeaconSimulator({"c2": {"203.0.113.7": rows}}) as simulator:
        client = client_from_settings(settings_for(simulator))
        result = look_up(client, entity_for_value("203.0.113.7", "IPv4-Addr", "TLP:CLEAR"), ["c2"], max_records=3)
    kept = [record.actor_ip.value for lookup in result.lookups for record in lookup.records]
    assert sorted(kept) == ["192.0.2.10", "192.0.2.8", "192.0.2.9"]
    assert result.left_out == 8
    assert "8 older ones left out (MALBEACON_MAX_RECORDS=3)" in result.summary()
    assert "11 records, 3 kept, 8 older ones left out" in result.summary()  # counts describe what was kept
    assert "; 3 actor IPs, 0 actor host names [1 API call]" in result.summary()


@pytest.mark.parametrize(
    ("failures", "cost"),
    [
        (0, "[1 API call]"),
        (1, "[2 API calls (1 lookup, 1 retry)]"),
        (2, "[3 API calls (1 lookup, 2 retries)]"),
        (3, "[3 API calls (1 lookup, 2 retries)]"),  # still failing after the retries: the lookup failed
    ],
)
def test_the_cost_counts_every_request_the_quota_counts(simulator, make_client, failures, cost):
    if failures:
        simulator.add_fault(Fault(kind="status", status=503, times=failures))
    result = look_up(make_client(), entity_for_value("203.0.113.7", "IPv4-Addr", "TLP:CLEAR"), ["c2"])
    assert result.summary().endswith(cost)
    assert len(simulator.api_requests()) == result.api_calls
    assert (result.error is not None) is (failures > 2)


def test_waiting_for_the_rate_limit_does_not_eat_the_lookup_time(simulator):
    """A wait for our turn longer than the lookup's whole time limit must not leave the request no time."""
    offset = [0.0]

    def clock() -> float:
        return time.monotonic() + offset[0]

    def wait(event: threading.Event, seconds: float) -> bool:
        time.sleep(1.5)  # really waits longer than the 1 s the lookup may take...
        offset[0] += seconds  # ...and the rate limit's minute passes
        return event.is_set()

    limiter = RateLimiter(1, clock=clock, wait=wait)
    limiter.acquire(threading.Event())  # the one request of this minute is used up
    settings = settings_for(simulator, request_timeout=1, max_retries=0)
    client = MalbeaconClient(settings.api_base_url, simulator.api_key, timeout=1, max_retries=0, rate_limiter=limiter)
    assert len(client.lookup("c2", "203.0.113.7")) == 6
