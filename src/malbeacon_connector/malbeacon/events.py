"""What the client tells an observer about its work: each request's outcome, cache hits, lookup times.

The connector counts these as Prometheus metrics; without an observer nothing is counted.
"""

from typing import Protocol

REQUEST_OUTCOMES = ("found", "no_results", "unauthorized", "rate_limited", "error")


class ClientEvents(Protocol):
    """Called by the client as requests and lookups end."""

    def request(self, endpoint: str, outcome: str) -> None:
        """One HTTP request to Malbeacon ended with `outcome` (one of REQUEST_OUTCOMES)."""

    def cache_hit(self, endpoint: str) -> None:
        """A lookup was answered by the cache: no request."""

    def lookup(self, endpoint: str, seconds: float) -> None:
        """A lookup sent to Malbeacon ended (its retries included), found or not, after `seconds`."""


class NoEvents:
    """The observer that counts nothing."""

    def request(self, endpoint: str, outcome: str) -> None:
        pass

    def cache_hit(self, endpoint: str) -> None:
        pass

    def lookup(self, endpoint: str, seconds: float) -> None:
        pass
