"""A daily budget of Malbeacon requests: at most `limit` per UTC day, retries included.

The count lives in a store: in memory for one command-line run, in the connector's state on the
OpenCTI platform for the connector (so that a restart or a second process does not reset it).
The store is read before each request and written after it, so what another process with the same
state spent is counted too.
"""

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from malbeacon_connector.malbeacon.errors import DailyLimitReached


class CountStore(Protocol):
    """Where the day's count is kept: `load()` gives `(UTC day, count)` or None, `save()` keeps them."""

    def load(self) -> tuple[str, int] | None: ...

    def save(self, day: str, count: int) -> None: ...


class MemoryStore:
    """A count kept in this process only."""

    def __init__(self) -> None:
        self._kept: tuple[str, int] | None = None

    def load(self) -> tuple[str, int] | None:
        return self._kept

    def save(self, day: str, count: int) -> None:
        self._kept = (day, count)


class DailyBudget:
    """`spend()` before each request: counts it, or raises DailyLimitReached once `limit` were sent today.

    A limit of 0 means no limit: nothing is counted or stored.
    """

    def __init__(
        self,
        limit: int,
        store: CountStore | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.limit = limit
        self._store = store if store is not None else MemoryStore()
        self._clock = clock
        self._lock = threading.Lock()
        self._known: tuple[str, int] | None = None  # the last count read or written

    def spend(self) -> None:
        """Count one request, or refuse it (no request may be sent) when today's limit is reached."""
        if not self.limit:
            return
        with self._lock:
            now = self._clock()
            count = self._count_today(now)
            if count >= self.limit:
                raise DailyLimitReached(self._reached_message(now))
            self._known = (_day(now), count + 1)
            self._store.save(*self._known)

    def left(self) -> int | None:
        """Requests left today as last read or written (None without a limit); read by the metrics."""
        if not self.limit:
            return None
        known = self._known
        spent = known[1] if known is not None and known[0] == _day(self._clock()) else 0
        return max(self.limit - spent, 0)

    def refresh(self) -> None:
        """Read the stored count (what `left()` tells), e.g. at start."""
        if self.limit:
            with self._lock:
                self._count_today(self._clock())

    def _count_today(self, now: datetime) -> int:
        stored = self._store.load()
        self._known = stored
        return stored[1] if stored is not None and stored[0] == _day(now) else 0

    def _reached_message(self, now: datetime) -> str:
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        minutes = max(int((midnight - now).total_seconds() // 60), 1)
        return (
            f"the daily limit of {self.limit} Malbeacon requests is reached (MALBEACON_DAILY_CALL_LIMIT); "
            f"no request was sent; it resets at {midnight:%Y-%m-%d %H:%M} UTC (in {minutes // 60} h {minutes % 60} min)"
        )


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()
