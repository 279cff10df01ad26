"""The feature checks of pycti's internals: each one's answer with the internal present, and its fallback."""

import functools
import threading
import time
from types import SimpleNamespace

import pytest
from pycti import OpenCTIConnectorHelper
from pycti.utils.opencti_stix2_splitter import OpenCTIStix2Splitter
from stubs import StubHelper, connector_settings

from malbeacon_connector.opencti import compat, lifecycle
from malbeacon_connector.opencti.connector import MalbeaconConnector


class Queue(threading.Thread):
    """Stands for pycti's ListenQueue: a thread with a handler thread, a connection and an exit event."""

    def __init__(self, seconds: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.seconds = seconds
        self.exit_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.stopped: list[str] = []
        self.channel = SimpleNamespace(stop_consuming=lambda: self.stopped.append("stop_consuming"))
        self.pika_connection = SimpleNamespace(is_open=True, add_callback_threadsafe=lambda callback: callback())

    def run(self) -> None:
        time.sleep(self.seconds)


def test_the_listen_queue_answers_when_pycti_has_one():
    queue = Queue()
    queue.thread = threading.Thread(target=time.sleep, args=(0.5,))
    queue.thread.start()
    helper = SimpleNamespace(listen_queue=queue)
    assert compat.listen_queue(helper) is queue and compat.handing_over(helper) and compat.consuming(helper)
    assert compat.stop_consuming(helper) and queue.exit_event.is_set() and queue.stopped == ["stop_consuming"]
    queue.thread.join()
    assert not compat.handing_over(helper)


@pytest.mark.parametrize("listen_queue", [None, object(), SimpleNamespace(thread=None, pika_connection=None)])
def test_without_a_listen_queue_nothing_is_known_and_nothing_fails(listen_queue):
    helper = SimpleNamespace(listen_queue=listen_queue)
    assert compat.listen_queue(helper) is None
    assert not compat.handing_over(helper) and not compat.consuming(helper) and not compat.stop_consuming(helper)
    compat.wait_for_listen_queue(helper)  # returns at once


def test_where_listen_returns_at_once_the_queue_is_waited_for():
    """pycti 6.0's `listen()` starts the queue and returns: the connector must not take that for a stop."""
    queue = Queue(seconds=0.3)
    queue.start()
    started = time.monotonic()
    compat.wait_for_listen_queue(SimpleNamespace(listen_queue=queue))
    assert not queue.is_alive() and time.monotonic() - started >= 0.25


def test_without_pycti_internals_a_stop_still_waits_for_the_message_in_progress():
    connector = MalbeaconConnector(connector_settings(), StubHelper(), SimpleNamespace(cancelled=False))  # type: ignore[arg-type]
    helper = SimpleNamespace()  # no listen queue at all
    assert not lifecycle._busy(helper, connector)  # type: ignore[arg-type]
    connector.processing.set()
    assert lifecycle._busy(helper, connector)  # type: ignore[arg-type]


def send_bundle_with_keywords(channel: object, bundle: str, **kwargs: object) -> None: ...


def send_bundle_named(channel: object, bundle: str, work_id: str, sequence: int, draft_id: str) -> None: ...


def send_bundle_old(channel: object, bundle: str) -> None: ...


@pytest.mark.parametrize(
    ("send_bundle", "supported"),
    [
        (functools.partial(OpenCTIConnectorHelper._send_bundle, None), True),  # this pycti's own
        (send_bundle_with_keywords, True),
        (send_bundle_named, True),
        (send_bundle_old, False),
        (None, False),
    ],
)
def test_transactions_need_pycti_s_message_builder(send_bundle, supported):
    assert compat.transactions_supported(SimpleNamespace(_send_bundle=send_bundle)) is supported


def test_transactions_need_the_splitter_with_expectations(monkeypatch):
    helper = SimpleNamespace(_send_bundle=send_bundle_with_keywords)
    assert compat.transactions_supported(helper)
    monkeypatch.delattr(OpenCTIStix2Splitter, "split_bundle_with_expectations")  # as in pycti 6.0
    assert not compat.transactions_supported(helper)


def test_this_pycti_has_every_internal_used():
    assert compat.listen_queue_class() is not None and hasattr(compat.listen_queue_class(), "_data_handler")
    assert compat.mq_ssl_context({}) is not None
