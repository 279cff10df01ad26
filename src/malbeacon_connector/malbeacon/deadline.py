"""A hard time limit on an HTTP request, headers and body included.

requests' timeouts bound each socket read, so a server that sends a byte now and then
could hold a request for ever. Here every connection registers its socket with the
deadline of the request in progress on its thread; when the deadline passes (or the
request is cancelled) a watchdog shuts the socket down, which ends any blocking read.
"""

import contextlib
import socket
import threading
from types import TracebackType

import requests
from requests.adapters import HTTPAdapter
from urllib3 import BaseHTTPResponse, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


class Deadline:
    """`with Deadline(seconds):` every socket used for a request in the block is shut down at the deadline."""

    def __init__(self, seconds: float) -> None:
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.expired = False
        self._timer = threading.Timer(max(seconds, 0.0), self.expire)
        self._timer.daemon = True

    def __enter__(self) -> "Deadline":
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._timer.cancel()
        _current.deadline = None

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def expire(self) -> None:
        """End the request now: shut down every socket it uses."""
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def _watch(sock: socket.socket | None) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.watch(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self, *args: object, **kwargs: object) -> BaseHTTPResponse:
        _watch(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[arg-type]


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self, *args: object, **kwargs: object) -> BaseHTTPResponse:
        _watch(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[arg-type]


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def _use_watched_pools(manager: PoolManager) -> PoolManager:
    manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
    return manager


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]
        _use_watched_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **kwargs: object) -> PoolManager:
        return _use_watched_pools(super().proxy_manager_for(proxy, **kwargs))


def watched_session() -> requests.Session:
    """A requests session whose requests obey the `Deadline` of their thread."""
    session = requests.Session()
    adapter = _WatchedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
