"""The hard time limit of a request: a server trickling bytes cannot hold it past its deadline."""

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from malbeacon_connector.malbeacon.deadline import Deadline, watched_session


@pytest.fixture
def trickling_server() -> Iterator[str]:
    """A loopback server that sends its headers, then one body byte every 0.2 s for ever (until closed)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(4096)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
                while not stop.is_set():
                    try:
                        connection.sendall(b"x")
                    except OSError:
                        break
                    stop.wait(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    stop.set()
    thread.join(timeout=5)
    listener.close()


def test_a_trickling_body_is_cut_at_the_deadline_though_every_read_succeeds(trickling_server):
    session = watched_session()
    started = time.monotonic()
    with pytest.raises(requests.RequestException), Deadline(1.0) as deadline:
        session.get(trickling_server, timeout=5).content  # noqa: B018 - reading the body is the point
    elapsed = time.monotonic() - started
    assert deadline.expired and 0.9 <= elapsed < 3.0  # each read would have succeeded within its 5 s timeout
    session.close()


def test_a_request_within_its_deadline_is_untouched(simulator):
    session = watched_session()
    with Deadline(5.0) as deadline:
        response = session.get(f"{simulator.base_url}/c2/c2/203.0.113.7", headers={"X-Api-Key": simulator.api_key})
    assert response.status_code == 200 and not deadline.expired
    session.close()


def test_expire_ends_the_request_in_progress_at_once(trickling_server):
    session = watched_session()
    deadline = Deadline(30.0)
    threading.Timer(0.5, deadline.expire).start()  # as a stop request does
    started = time.monotonic()
    with pytest.raises(requests.RequestException), deadline:
        session.get(trickling_server, timeout=30).content  # noqa: B018
    assert time.monotonic() - started < 3.0
    session.close()
