"""The daily count in the connector's state: read from the platform before each request, sent at once after."""

import json

from malbeacon_connector.malbeacon.budget import DailyBudget
from malbeacon_connector.opencti.state import STATE_KEY, PlatformCountStore


class StateHelper:
    """pycti's helper as far as the state goes: a state in memory, a platform holding one, pings."""

    def __init__(self, platform_state: object = None, local_state: dict | None = None) -> None:
        self.connector_id = "c0ffee00-0000-4000-8000-000000000001"
        self.platform_state = platform_state  # what the platform holds (JSON text), or an exception to raise
        self.local = json.dumps(local_state) if local_state else None
        self.pings = 0
        self.queries: list[dict] = []
        self.api = self
        self.connector_logger = self
        self.warnings: list[str] = []

    def query(self, query: str, variables: dict) -> dict:
        self.queries.append(variables)
        if isinstance(self.platform_state, Exception):
            raise self.platform_state
        return {"data": {"connector": {"connector_state": self.platform_state}}}

    def get_state(self) -> dict | None:
        return json.loads(self.local) if self.local else None

    def set_state(self, state: dict | None) -> None:
        self.local = json.dumps(state) if isinstance(state, dict) else None

    def force_ping(self) -> None:
        self.pings += 1
        self.platform_state = self.local

    def warning(self, message: str, meta: object = None) -> None:
        self.warnings.append(message)


def test_save_keeps_the_other_keys_and_pings_at_once():
    helper = StateHelper(local_state={"last_run": 42})
    PlatformCountStore(helper).save("2026-12-01", 3)
    assert helper.get_state() == {"last_run": 42, STATE_KEY: {"day": "2026-12-01", "count": 3}}
    assert helper.pings == 1 and json.loads(helper.platform_state)[STATE_KEY]["count"] == 3


def test_load_reads_the_platform_and_keeps_it_in_memory_for_the_next_ping():
    """What another process with the same id wrote, or a reset in the UI, wins over the memory."""
    helper = StateHelper(
        json.dumps({STATE_KEY: {"day": "2026-12-01", "count": 7}}), {STATE_KEY: {"day": "2026-12-01", "count": 2}}
    )
    store = PlatformCountStore(helper)
    assert store.load() == ("2026-12-01", 7)
    assert helper.get_state()[STATE_KEY]["count"] == 7
    assert helper.queries == [{"id": helper.connector_id}]
    helper.platform_state = None  # reset state
    assert store.load() is None and helper.get_state() is None


def test_an_unreadable_platform_falls_back_to_the_memory():
    helper = StateHelper(ConnectionError("platform down"), {STATE_KEY: {"day": "2026-12-01", "count": 4}})
    assert PlatformCountStore(helper).load() == ("2026-12-01", 4)
    assert helper.warnings == ["Cannot read the connector's state"]


def test_malformed_counts_are_ignored():
    for entry in ({"day": "2026-12-01", "count": "3"}, {"day": 1, "count": 3}, {"count": -1}, [], {"count": True}):
        helper = StateHelper(json.dumps({STATE_KEY: entry}))
        assert PlatformCountStore(helper).load() is None


def test_two_processes_on_one_platform_share_the_budget():
    platform = StateHelper()
    other = StateHelper()
    other.api = platform  # the second process reads the same platform
    other.force_ping = lambda: setattr(platform, "platform_state", other.local)  # type: ignore[method-assign]
    first, second = DailyBudget(2, PlatformCountStore(platform)), DailyBudget(2, PlatformCountStore(other))
    first.spend()
    second.spend()
    assert second.left() == 0
    first.refresh()
    assert first.left() == 0
