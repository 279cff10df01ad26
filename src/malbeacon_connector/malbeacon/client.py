"""HTTP client of the Malbeacon API: safe paths, a bounded time per lookup, typed failures.

`lookup` returns the rows of a response (an empty list when Malbeacon has no results)
or raises one of the errors of `errors.py`. The API key only ever travels in the
`X-Api-Key` header: it is never in a URL, a log line or an error message.
"""

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import requests
from urllib3.exceptions import HTTPError, ReadTimeoutError

from malbeacon_connector.malbeacon.budget import CountStore, DailyBudget
from malbeacon_connector.malbeacon.cache import AnswerCache, RateLimiter
from malbeacon_connector.malbeacon.deadline import Deadline, watched_session
from malbeacon_connector.malbeacon.endpoints import ENDPOINTS
from malbeacon_connector.malbeacon.errors import (
    BadResponse,
    Cancelled,
    MalbeaconError,
    QuotaExceeded,
    Unauthorized,
    Unavailable,
)
from malbeacon_connector.malbeacon.events import ClientEvents, NoEvents
from malbeacon_connector.malbeacon.trust import TrustStore
from malbeacon_connector.settings import MalbeaconSettings
from malbeacon_connector.text import clean_text

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 8.0
MAX_RETRY_AFTER_SECONDS = 10.0
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024
_MESSAGE_CHARS = 200
_CANCELLED = "the connector stopped before Malbeacon answered; enrich the value again"


class _Retryable(Exception):
    """An attempt failed in a way worth trying again; carries the final error if none succeeds."""

    def __init__(self, error: MalbeaconError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def lookup_path(endpoint: str, value: str) -> str:
    """`c2/<endpoint>/<value>` with the value as exactly one percent-encoded path segment."""
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown Malbeacon endpoint {endpoint!r}; allowed: {', '.join(ENDPOINTS)}")
    if value.strip() in ("", ".", ".."):
        raise ValueError(f"{value!r} cannot be looked up")
    return f"c2/{endpoint}/{quote(value, safe='')}"


@dataclass(frozen=True)
class Answer:
    """Malbeacon's rows for one lookup, and whether the cache gave them (no API call made)."""

    rows: list[object]
    cached: bool


class MalbeaconClient:
    """Calls `GET {base}/c2/{endpoint}/{value}` with timeouts and bounded, backed-off retries."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 2,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        cache: AnswerCache | None = None,
        rate_limiter: RateLimiter | None = None,
        trust: TrustStore | None = None,
        budget: DailyBudget | None = None,
        events: ClientEvents | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/") + "/"
        self._api_key = api_key
        self._timeout = timeout
        self._attempts = max_retries + 1
        self._max_response_bytes = max_response_bytes
        self._session = session or watched_session()
        self._trust = trust if trust is not None else TrustStore()  # the client's own: closed with it
        self._verify = self._trust.path  # an explicit file: no environment variable changes what is trusted
        self._sleep = sleep
        self._cancelled = threading.Event()
        self._deadline: Deadline | None = None
        self._cache = cache if cache is not None else AnswerCache(ttl=0)
        self._rate_limiter = rate_limiter if rate_limiter is not None else RateLimiter(0)
        self.budget = budget if budget is not None else DailyBudget(0)
        self._events: ClientEvents = events if events is not None else NoEvents()
        self.requests_sent = 0  # HTTP requests made so far, retries included: what the quota counts

    def close(self) -> None:
        """Release the pooled connections, and the trusted certificates' file if one was made."""
        self._session.close()
        self._trust.close()

    @property
    def cancelled(self) -> bool:
        """True once `cancel()` was called: the connector is stopping."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Cut the lookup in progress short (it fails with `Cancelled`), and every later one."""
        self._cancelled.set()
        deadline = self._deadline
        if deadline is not None:
            deadline.expire()

    def lookup(self, endpoint: str, value: str) -> list[object]:
        """The rows Malbeacon has for `value` on `endpoint`; [] when it has none."""
        return self.answer(endpoint, value).rows

    def answer(self, endpoint: str, value: str) -> "Answer":
        """The rows for `value` on `endpoint`, from the cache when it has them (no API call)."""
        url = self._base_url + lookup_path(endpoint, value)
        cached = self._cache.get(endpoint, value)
        if cached is not None:
            logger.debug("Malbeacon request %s %r: answered from the cache", endpoint, value)
            self._events.cache_hit(endpoint)
            return Answer(self._rows(_json(cached), ""), cached=True)
        started, sent_before = time.monotonic(), self.requests_sent
        try:
            return Answer(self._ask(endpoint, value, url), cached=False)
        finally:
            if self.requests_sent > sent_before:
                self._events.lookup(endpoint, time.monotonic() - started)

    def _ask(self, endpoint: str, value: str, url: str) -> list[object]:
        """The rows Malbeacon gives for one lookup, within its attempts, its deadline and the daily budget."""
        deadline = time.monotonic() + self._timeout * self._attempts
        for attempt in range(1, self._attempts + 1):
            deadline += self._rate_limiter.acquire(self._cancelled)  # waiting for our turn is not Malbeacon's time
            if self._cancelled.is_set():
                raise Cancelled(_CANCELLED)
            self.budget.spend()
            started = time.monotonic()
            self.requests_sent += 1
            try:
                status, body, retry_after = self._attempt(url, min(self._timeout, deadline - started))
                rows = self._interpret(status, body, retry_after)
            except _Retryable as failure:
                self._events.request(endpoint, _outcome(failure.error))
                _log_request(endpoint, value, attempt, started, f"failed, will retry if time allows: {failure.error}")
                delay = failure.retry_after
                if delay is None:
                    delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (attempt - 1))
                if attempt == self._attempts or time.monotonic() + delay + 1 > deadline:
                    raise failure.error from None
                if not self._cancelled.is_set():
                    self._sleep(delay)
                continue
            except MalbeaconError as error:
                self._events.request(endpoint, _outcome(error))
                _log_request(endpoint, value, attempt, started, f"failed: {error}")
                raise
            self._events.request(endpoint, "found" if rows else "no_results")
            _log_request(endpoint, value, attempt, started, f"HTTP {status}, {len(rows)} records")
            self._cache.put(endpoint, value, body if rows else b"[]")
            return rows
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, url: str, timeout: float) -> tuple[int, bytes, str | None]:
        watchdog = Deadline(timeout)
        self._deadline = watchdog
        try:
            with (
                watchdog,
                self._session.get(
                    url,
                    headers={"X-Api-Key": self._api_key, "Accept": "application/json"},
                    timeout=timeout,
                    stream=True,
                    allow_redirects=False,
                    verify=self._verify,
                ) as response,
            ):
                body = self._read_body(response)
                status = response.status_code
                retry_after = response.headers.get("Retry-After")
        except requests.exceptions.SSLError:
            raise Unavailable(
                f"the TLS certificate of {self._base_url} is not trusted; if a proxy re-signs traffic, set "
                "MALBEACON_CA_BUNDLE (or HTTPS_CA_CERTIFICATES) to its CA certificates (PEM)"
            ) from None
        except (requests.RequestException, HTTPError, OSError) as error:
            if self._cancelled.is_set():
                raise Cancelled(_CANCELLED) from None
            if watchdog.expired or isinstance(error, requests.Timeout | ReadTimeoutError | TimeoutError):
                raise _Retryable(
                    Unavailable(
                        f"Malbeacon did not answer within {self._timeout:g} s; it may be overloaded, try again later"
                    )
                ) from None
            raise _Retryable(
                Unavailable(
                    f"cannot reach Malbeacon at {self._base_url} ({error.__class__.__name__}); "
                    "check the network, the proxy settings and MALBEACON_API_BASE_URL"
                )
            ) from None
        finally:
            self._deadline = None
        return status, body, retry_after

    def _read_body(self, response: requests.Response) -> bytes:
        """The whole body within the size limit (the deadline's watchdog ends a read that takes too long)."""
        chunks: list[bytes] = []
        size = 0
        while chunk := response.raw.read1(_CHUNK_BYTES, decode_content=True):
            size += len(chunk)
            if size > self._max_response_bytes:
                raise BadResponse(
                    f"Malbeacon's answer is larger than the limit of {self._max_response_bytes:,} bytes; "
                    "it was not read"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _interpret(self, status: int, body: bytes, retry_after: str | None) -> list[object]:
        document = _json(body)
        message = self._server_message(document)
        if status == 200:
            return self._rows(document, message)
        if status == 400 and "no result" in message.lower():
            return []
        if status == 401:
            raise Unauthorized("Malbeacon refused the API key (HTTP 401); check MALBEACON_API_KEY")
        if status == 403:
            raise QuotaExceeded(
                f"Malbeacon refused the request (HTTP 403{': ' + message if message else ''}); "
                "the quota may be used up or the account may not use this lookup"
            )
        if status == 429:
            raise _Retryable(
                QuotaExceeded(
                    f"Malbeacon's rate limit or quota was hit (HTTP 429{': ' + message if message else ''}); "
                    "try again later or raise the quota of the account"
                ),
                _retry_after_seconds(retry_after),
            )
        if status >= 500:
            raise _Retryable(Unavailable(f"Malbeacon failed (HTTP {status}); try again later"))
        raise BadResponse(f"unexpected answer from Malbeacon (HTTP {status}{': ' + message if message else ''})")

    def _rows(self, document: object, message: str) -> list[object]:
        if document is _NOT_JSON:
            raise BadResponse("Malbeacon's answer is not JSON; the API may have changed or a proxy interfered")
        if isinstance(document, dict) and "no result" in message.lower():
            return []
        if not isinstance(document, list):
            raise BadResponse(f"Malbeacon's answer is a JSON {type(document).__name__}, not a list of records")
        return document

    def _server_message(self, document: object) -> str:
        """The `message` of a JSON error body, shortened, without control characters and with the key masked."""
        if not isinstance(document, dict) or not isinstance(document.get("message"), str):
            return ""
        text = document["message"].replace(self._api_key, "***") if self._api_key else document["message"]
        return " ".join(clean_text(text).split())[:_MESSAGE_CHARS]


_NOT_JSON = object()


def _json(body: bytes) -> object:
    """The decoded body; numbers stay text (no integer is too long to read); `_NOT_JSON` when unreadable."""
    try:
        return json.loads(body, parse_int=str, parse_float=str, parse_constant=str)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _outcome(error: MalbeaconError) -> str:
    """A failed request's outcome, as the metrics name it."""
    if isinstance(error, Unauthorized):
        return "unauthorized"
    return "rate_limited" if isinstance(error, QuotaExceeded) else "error"


def _log_request(endpoint: str, value: str, attempt: int, started: float, outcome: str) -> None:
    """One debug line per request: endpoint, value, attempt, duration and outcome (never the key)."""
    logger.debug(
        "Malbeacon request %s %r (attempt %d): %s in %.3f s",
        endpoint,
        value,
        attempt,
        outcome,
        time.monotonic() - started,
    )


def _retry_after_seconds(header: str | None) -> float | None:
    """A Retry-After header (seconds or HTTP date) as seconds, capped; None when absent or unreadable."""
    if not header:
        return None
    try:
        seconds = float(header)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(header).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def client_from_settings(
    settings: MalbeaconSettings, *, store: CountStore | None = None, events: ClientEvents | None = None
) -> MalbeaconClient:
    """A client configured by the `malbeacon` settings section, with its cache, rate limit and daily budget
    (its count kept in `store`, in memory by default), telling `events` what it does."""
    return MalbeaconClient(
        settings.api_base_url,
        settings.api_key.get_secret_value(),
        timeout=settings.request_timeout,
        max_retries=settings.max_retries,
        max_response_bytes=settings.max_response_mb * 1024 * 1024,
        cache=AnswerCache(ttl=settings.cache_ttl, max_entries=settings.cache_max_entries),
        rate_limiter=RateLimiter(settings.rate_limit_per_minute),
        trust=TrustStore(settings.ca_bundle, settings.managed_ca_certificates),
        budget=DailyBudget(settings.daily_call_limit, store),
        events=events,
    )
