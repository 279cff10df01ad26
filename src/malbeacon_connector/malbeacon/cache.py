"""Sparing the Malbeacon quota: a cache of answers and a client-side rate limit."""

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

logger = logging.getLogger(__name__)


class AnswerCache:
    """Malbeacon answers (response bodies) by `(endpoint, value)`, for `ttl` seconds.

    Bounded in entries and in bytes, least recently used first out; a TTL of 0 disables it.
    Only answers are cached (records or "no results"), never failures.
    """

    def __init__(
        self,
        ttl: float,
        max_entries: int = 1000,
        max_bytes: int = 256 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._ttl > 0 and self._max_entries > 0

    def get(self, endpoint: str, value: str) -> bytes | None:
        """The cached body, or None when absent or expired."""
        if not self.enabled:
            return None
        key = (endpoint, value)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, endpoint: str, value: str, body: bytes) -> None:
        if not self.enabled or len(body) > self._max_bytes:
            return
        key = (endpoint, value)
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (self._clock() + self._ttl, body)
            self._bytes += len(body)
            while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
                self._drop(next(iter(self._entries)))

    def _drop(self, key: tuple[str, str]) -> None:
        _, body = self._entries.pop(key)
        self._bytes -= len(body)

    def __len__(self) -> int:
        return len(self._entries)


class RateLimiter:
    """At most `per_minute` requests in any 60 s window (0: no limit); waiting is logged."""

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[threading.Event, float], bool] = threading.Event.wait,
    ) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._wait = wait
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self, cancelled: threading.Event) -> float:
        """Wait (interruptibly) until a request may go; the seconds waited."""
        if self._per_minute <= 0:
            return 0.0
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and self._sent[0] <= now - 60:
                    self._sent.popleft()
                if len(self._sent) < self._per_minute:
                    self._sent.append(now)
                    return waited
                delay = self._sent[0] + 60 - now
            logger.warning(
                "Malbeacon rate limit (%d requests per minute) reached: waiting %.1f s before the next request",
                self._per_minute,
                delay,
            )
            if self._wait(cancelled, delay):
                return waited
            waited += delay
