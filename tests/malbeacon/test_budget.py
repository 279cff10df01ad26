"""The daily budget of Malbeacon requests: counting, refusing, the UTC day, a shared store; and the client
that spends it before each request, retries included, cached answers free."""

from datetime import UTC, datetime, timedelta

import pytest

from malbeacon_connector.malbeacon.budget import DailyBudget, MemoryStore
from malbeacon_connector.malbeacon.cache import AnswerCache
from malbeacon_connector.malbeacon.errors import DailyLimitReached
from malbeacon_connector.malbeacon.simulator import Fault

KNOWN, UNKNOWN = "203.0.113.7", "198.51.100.250"


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def test_no_limit_counts_and_stores_nothing():
    store = MemoryStore()
    budget = DailyBudget(0, store)
    for _ in range(1000):
        budget.spend()
    assert store.load() is None and budget.left() is None


def test_the_limit_refuses_the_next_request_naming_the_setting_and_the_reset():
    clock = Clock(datetime(2026, 12, 1, 21, 30, tzinfo=UTC))
    budget = DailyBudget(3, clock=clock)
    for left in (2, 1, 0):
        budget.spend()
        assert budget.left() == left
    with pytest.raises(DailyLimitReached) as refused:
        budget.spend()
    message = str(refused.value)
    assert "daily limit of 3 Malbeacon requests" in message and "MALBEACON_DAILY_CALL_LIMIT" in message
    assert "resets at 2026-12-02 00:00 UTC (in 2 h 30 min)" in message
    assert budget.left() == 0


def test_a_new_utc_day_starts_a_new_count():
    clock = Clock(datetime(2026, 12, 1, 23, 59, tzinfo=UTC))
    store = MemoryStore()
    budget = DailyBudget(1, store, clock)
    budget.spend()
    with pytest.raises(DailyLimitReached):
        budget.spend()
    clock.moment += timedelta(minutes=2)
    assert budget.left() == 1
    budget.spend()
    assert store.load() == ("2026-12-02", 1)


def test_two_budgets_on_one_store_share_the_count():
    """Two processes with one state: each reads the count before spending."""
    store = MemoryStore()
    first, second = DailyBudget(3, store), DailyBudget(3, store)
    first.spend()
    second.spend()
    first.spend()
    with pytest.raises(DailyLimitReached):
        second.spend()


def test_a_cleared_store_gives_the_day_back_and_refresh_reads_it():
    store = MemoryStore()
    budget = DailyBudget(2, store)
    budget.spend()
    budget.spend()
    store.save("2000-01-01", 99)  # what a state reset or another day leaves
    budget.refresh()
    assert budget.left() == 2


def test_the_client_spends_one_per_request_retries_included_and_sends_none_past_the_limit(simulator, make_client):
    simulator.add_fault(Fault(kind="status", status=503, times=1))
    budget = DailyBudget(3)
    client = make_client(budget=budget)
    assert client.lookup("c2", KNOWN)  # two requests: a 503, then the answer
    assert budget.left() == 1
    client.lookup("c2", UNKNOWN)
    assert budget.left() == 0
    with pytest.raises(DailyLimitReached):
        client.lookup("c2", "203.0.113.99")
    assert len(simulator.api_requests()) == 3 and client.requests_sent == 3


def test_a_retry_past_the_limit_is_not_sent(simulator, make_client):
    simulator.add_fault(Fault(kind="status", status=503, times=1))
    client = make_client(budget=DailyBudget(1))
    with pytest.raises(DailyLimitReached):
        client.lookup("c2", KNOWN)
    assert len(simulator.api_requests()) == 1


def test_cached_answers_are_served_past_the_limit(simulator, make_client):
    client = make_client(budget=DailyBudget(1), cache=AnswerCache(ttl=3600))
    first = client.lookup("c2", KNOWN)
    assert client.answer("c2", KNOWN).rows == first
    assert len(simulator.api_requests()) == 1
