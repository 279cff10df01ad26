"""The daily count of Malbeacon requests, kept in the connector's state on the OpenCTI platform.

pycti keeps the state in memory (`get_state`/`set_state`), its ping thread sends it every 40 s and
registration hands it back at start. The count is read from the platform before each request (so
what another process with the same CONNECTOR_ID spent, or a "reset state" in the UI, is seen) and
sent at once after it (`force_ping`), so that a restart right after a request keeps it. The state's
other keys are kept as they are.
"""

import json
from typing import Any

from pycti import OpenCTIConnectorHelper

STATE_KEY = "malbeacon_daily_calls"
_STATE_QUERY = "query MalbeaconConnectorState($id: String!) { connector(id: $id) { connector_state } }"


class PlatformCountStore:
    """A `CountStore` in the connector's state: `{"malbeacon_daily_calls": {"day": ..., "count": ...}}`."""

    def __init__(self, helper: OpenCTIConnectorHelper) -> None:
        self._helper = helper

    def load(self) -> tuple[str, int] | None:
        state = self._platform_state()
        if state is not _UNREADABLE and state != self._helper.get_state():
            self._helper.set_state(state)  # so that pycti's next ping sends what the platform has
        return _count_in(self._helper.get_state())

    def save(self, day: str, count: int) -> None:
        state = dict(self._helper.get_state() or {})
        state[STATE_KEY] = {"day": day, "count": count}
        self._helper.set_state(state)
        self._helper.force_ping()

    def _platform_state(self) -> Any:
        """The state the platform holds (None when empty); `_UNREADABLE` when it cannot be read (then
        the state in memory is used)."""
        try:
            connector = self._helper.api.query(_STATE_QUERY, {"id": self._helper.connector_id})["data"]["connector"]
            text = connector.get("connector_state") if isinstance(connector, dict) else None
            state = json.loads(text) if text else None
        except Exception as error:  # the platform is unreachable or answers something else
            self._helper.connector_logger.warning("Cannot read the connector's state", {"error": str(error)[:200]})
            return _UNREADABLE
        return state if isinstance(state, dict) and state else None


_UNREADABLE = object()


def _count_in(state: Any) -> tuple[str, int] | None:
    entry = state.get(STATE_KEY) if isinstance(state, dict) else None
    if not isinstance(entry, dict):
        return None
    day, count = entry.get("day"), entry.get("count")
    if not isinstance(day, str) or not isinstance(count, int) or isinstance(count, bool) or count < 0:
        return None
    return day, count
