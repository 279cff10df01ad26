"""The connector's process: registration with OpenCTI, listening, and a clean stop.

Registration is tried three times before exiting 1; SIGTERM stops taking messages, lets the one
in progress finish (or cuts its lookup or its push short so that it ends in error), and exits
within 10 s.
"""

import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from pycti import OpenCTIConnectorHelper

from malbeacon_connector.malbeacon.client import MalbeaconClient, client_from_settings
from malbeacon_connector.opencti import compat
from malbeacon_connector.opencti.connector import MalbeaconConnector
from malbeacon_connector.opencti.heartbeat import start_heartbeat
from malbeacon_connector.opencti.metrics import metrics_for
from malbeacon_connector.opencti.state import PlatformCountStore
from malbeacon_connector.opencti.trigger import capture_internal
from malbeacon_connector.settings import Settings

START_ATTEMPTS = 3
START_RETRY_SECONDS = 5.0
STOP_GRACE_SECONDS = 6.0
STOP_REPORT_SECONDS = 2.5


def helper_config(settings: Settings, config_file_content: dict[str, Any]) -> dict[str, Any]:
    """The configuration handed to pycti: the file's own sections with the validated values on top.

    The Malbeacon section (with the API key) is never given to pycti.
    """
    config = {
        section: dict(values)
        for section, values in config_file_content.items()
        if section != "malbeacon" and isinstance(values, dict)
    }
    config.setdefault("opencti", {}).update(url=settings.opencti.url, token=settings.opencti.token.get_secret_value())
    config.setdefault("connector", {}).update(
        id=settings.connector.id,
        name=settings.connector.name,
        scope=",".join(settings.connector.scope),
        auto=settings.connector.auto,
        log_level=settings.connector.log_level,
    )
    config["connector"]["type"] = "INTERNAL_ENRICHMENT"  # whatever the file says
    return config


class _Stopper:
    """SIGTERM/SIGINT: stop taking messages; the one in progress is finished (or cut short) and reported."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.helper: OpenCTIConnectorHelper | None = None

    def install(self) -> None:
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signal_number, self._on_signal)

    def _on_signal(self, signal_number: int, frame: object) -> None:
        self.requested.set()
        if self.helper is not None:
            compat.stop_consuming(self.helper)


def _busy(helper: OpenCTIConnectorHelper, connector: MalbeaconConnector) -> bool:
    """A message is being processed (by the connector, or being handed over by pycti)."""
    return connector.processing.is_set() or compat.handing_over(helper)


def _activity(stopper: _Stopper, helper: OpenCTIConnectorHelper, connector: MalbeaconConnector) -> str:
    """What the connector is doing, for the health file."""
    if stopper.requested.is_set():
        return "stopping"
    if _busy(helper, connector):
        return "enriching"
    return "connecting to the broker" if compat.broker_connected(helper) is False else "listening"


def _finish(
    helper: OpenCTIConnectorHelper, listener: threading.Thread, client: MalbeaconClient, connector: MalbeaconConnector
) -> None:
    """Let the message in progress finish; past the grace period, cut its lookup (or its push, before the next
    transaction) short so that it ends in error."""
    grace_end = time.monotonic() + STOP_GRACE_SECONDS
    while (
        listener.is_alive() and time.monotonic() < grace_end and (_busy(helper, connector) or compat.consuming(helper))
    ):
        listener.join(timeout=0.1)
    if listener.is_alive() and _busy(helper, connector):
        helper.connector_logger.warning("Stopping: the enrichment in progress is cut short")
        client.cancel()
        report_end = time.monotonic() + STOP_REPORT_SECONDS
        while _busy(helper, connector) and time.monotonic() < report_end:
            listener.join(timeout=0.1)


def _listen(helper: OpenCTIConnectorHelper, connector: MalbeaconConnector) -> None:
    """Listen for enrichment messages until the helper stops."""
    helper.listen(message_callback=connector.process_message)
    compat.wait_for_listen_queue(helper)


class _WithoutTraceback(logging.Filter):
    """Keeps pycti's start-up errors to one line: our own message says what to do."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


def _start_helper(settings: Settings, config: dict[str, Any], stopper: _Stopper) -> OpenCTIConnectorHelper | None:
    """The registered helper; None when asked to stop meanwhile; SystemExit(1) when OpenCTI stays unreachable."""
    api_logger = logging.getLogger("api")
    one_line = _WithoutTraceback()
    api_logger.addFilter(one_line)
    try:
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                return OpenCTIConnectorHelper(config, playbook_compatible=True)
            except Exception as error:
                reason = str(error).replace(settings.opencti.token.get_secret_value(), "***").splitlines()[0][:200]
                print(
                    f"malbeacon-connector: cannot register with OpenCTI at {settings.opencti.url} "
                    f"(attempt {attempt}/{START_ATTEMPTS}): {error.__class__.__name__}: {reason}",
                    file=sys.stderr,
                    flush=True,
                )
            finally:
                stopper.install()  # pycti installs its own SIGTERM/SIGINT handlers when HTTPS_CA_CERTIFICATES is set
            last = attempt == START_ATTEMPTS
            if stopper.requested.is_set() or (not last and stopper.requested.wait(START_RETRY_SECONDS)):
                return None
    finally:
        api_logger.removeFilter(one_line)
    raise SystemExit(1)


def run(settings: Settings, config_file_content: dict[str, Any]) -> int:
    """Run the connector until SIGTERM (0); 1 when OpenCTI or the broker fails it (settings are valid)."""
    stopper = _Stopper()
    stopper.install()
    config = helper_config(settings, config_file_content)
    helper = _start_helper(settings, config, stopper)
    if helper is None:
        return 0
    stopper.helper = helper
    if not capture_internal(compat.listen_queue_class()):
        helper.connector_logger.info("This pycti keeps no message mode: automatic enrichments are told by work name")
    metrics = metrics_for(helper, config)
    client = client_from_settings(settings.malbeacon, store=PlatformCountStore(helper), events=metrics)
    client.budget.refresh()
    metrics.watch_budget(client.budget)
    connector = MalbeaconConnector(settings, helper, client, metrics)
    helper.connector_logger.info(
        "Malbeacon connector listening",
        {"scope": ",".join(settings.connector.scope), "max_tlp": settings.malbeacon.max_tlp},
    )
    heartbeat = start_heartbeat(settings.malbeacon, helper, lambda: _activity(stopper, helper, connector))
    listener = threading.Thread(target=_listen, args=(helper, connector), name="listen", daemon=True)
    listener.start()
    while listener.is_alive() and not stopper.requested.is_set():
        listener.join(timeout=0.5)
    status = 0
    if stopper.requested.is_set():
        _finish(helper, listener, client, connector)
        helper.connector_logger.info("Malbeacon connector stopped")
    else:
        print("malbeacon-connector: the listener stopped unexpectedly; see the log above", file=sys.stderr)
        status = 1
    if heartbeat is not None:
        heartbeat.stop()  # `health` then says the connector is not running
    ping = getattr(helper, "ping", None)
    if ping is not None:
        ping.stop()
    client.close()
    compat.remove_proxy_certificates()  # pycti's exit handlers do not run after os._exit
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # the helper's broker threads are not daemons and may sleep up to 10 s
