"""The connector's own SIGTERM/SIGINT handlers survive the helper's creation: pycti replaces them with its own
(which exit at once) when HTTPS_CA_CERTIFICATES is set."""

import os
import signal
import threading
import time

import pytest
from stubs import connector_settings

from malbeacon_connector.opencti import lifecycle

SIGNALS = (signal.SIGTERM, signal.SIGINT)


@pytest.fixture(autouse=True)
def restored_handlers():
    before = {number: signal.getsignal(number) for number in SIGNALS}
    yield
    for number, handler in before.items():
        signal.signal(number, handler)


def _pycti_handler(signal_number: int, frame: object) -> None:
    """Stands for pycti's handler: it would remove its CA bundle and raise SystemExit(0)."""


def helper_installing_its_handlers(fails: bool):
    """A helper class that installs its own signal handlers while it is created, as pycti's does."""

    class Helper:
        def __init__(self, config: dict, playbook_compatible: bool = False) -> None:
            for number in SIGNALS:
                signal.signal(number, _pycti_handler)
            if fails:
                raise ConnectionError("platform unreachable")

    return Helper


def test_the_connector_s_handlers_are_back_once_the_helper_is_created(monkeypatch):
    monkeypatch.setattr(lifecycle, "OpenCTIConnectorHelper", helper_installing_its_handlers(fails=False))
    stopper = lifecycle._Stopper()
    stopper.install()
    assert lifecycle._start_helper(connector_settings(), {}, stopper) is not None
    assert [signal.getsignal(number) for number in SIGNALS] == [stopper._on_signal] * 2


def test_sigterm_between_failed_attempts_is_the_connector_s_stop(monkeypatch):
    monkeypatch.setattr(lifecycle, "OpenCTIConnectorHelper", helper_installing_its_handlers(fails=True))
    monkeypatch.setattr(lifecycle, "START_RETRY_SECONDS", 3.0)
    stopper = lifecycle._Stopper()
    stopper.install()
    sender = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    started = time.monotonic()
    sender.start()
    try:
        assert lifecycle._start_helper(connector_settings(), {}, stopper) is None  # asked to stop: no retry
    finally:
        sender.cancel()
        sender.join(timeout=5)
    assert stopper.requested.is_set() and time.monotonic() - started < 2.5
