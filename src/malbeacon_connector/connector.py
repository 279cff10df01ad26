"""The OpenCTI connector: pycti's helper in, one bundle and a one-line work message out.

The only module that knows pycti. Per message: scope check, TLP gate (before any
Malbeacon request), enrichment, one bundle (the original objects + the new ones).
In a playbook the original bundle goes back on every path, so the playbook never stalls.
Nothing is kept from one message to the next.
"""

import json
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pycti import OpenCTIConnectorHelper

from .bundle import make_bundle, merge_objects
from .client import MalbeaconClient, client_from_settings
from .converter import EnrichedEntity, convert
from .enrichment import conversion_options, enrich, lookup_plan
from .gate import entity_tlp, in_scope
from .settings import Settings, SettingsError, read_config_file, settings_from
from .values import normalise_value

START_ATTEMPTS = 3
START_RETRY_SECONDS = 5.0
STOP_GRACE_SECONDS = 8.0


class EnrichmentFailed(Exception):
    """The enrichment could not be done; the work ends in error with this message."""


class MalbeaconConnector:
    """Handles enrichment messages for a helper, with a Malbeacon client."""

    def __init__(self, settings: Settings, helper: OpenCTIConnectorHelper, client: MalbeaconClient) -> None:
        self._settings = settings
        self._helper = helper
        self._client = client
        self._plan = lookup_plan(settings.malbeacon)
        self._options = conversion_options(settings.malbeacon)

    def process_message(self, data: dict[str, Any]) -> str:
        """The helper's callback: returns the work message, raises EnrichmentFailed on failure."""
        stix_objects: list[dict] = data.get("stix_objects") or []
        opencti_entity: dict = data.get("enrichment_entity") or {}
        # playbook messages carry no entity_type: the entity read by the helper has it
        entity_type = str(opencti_entity.get("entity_type") or data.get("entity_type") or "")
        try:
            return self._enrich(entity_type, data["stix_entity"], stix_objects, opencti_entity)
        except EnrichmentFailed:
            self._send_back_in_playbook(stix_objects)
            raise

    def _enrich(self, entity_type: str, stix_entity: dict, stix_objects: list[dict], opencti_entity: dict) -> str:
        settings = self._settings
        value = str(opencti_entity.get("observable_value") or stix_entity.get("value") or "")
        if not in_scope(entity_type, settings.connector.scope):
            return self._done_without_lookup(
                stix_objects,
                f"{entity_type} {value!r} is out of scope ({', '.join(settings.connector.scope)}); "
                "nothing was asked to Malbeacon",
            )
        tlp = entity_tlp(opencti_entity.get("objectMarking"))
        max_tlp = settings.malbeacon.max_tlp
        if not OpenCTIConnectorHelper.check_max_tlp(tlp, max_tlp):
            return self._done_without_lookup(
                stix_objects, f"{value!r} is {tlp}, above MALBEACON_MAX_TLP ({max_tlp}): not sent to Malbeacon"
            )
        try:
            normalised, _ = normalise_value(value, entity_type)
        except ValueError as error:
            return self._done_without_lookup(stix_objects, f"cannot be looked up in Malbeacon: {error}")
        entity = EnrichedEntity(stix_entity, entity_type, normalised, tlp)
        result = enrich(self._client, entity, self._plan[entity_type])
        self._helper.connector_logger.info("Malbeacon enrichment", {"summary": result.summary()})
        if result.error is not None:
            raise EnrichmentFailed(result.summary())
        if not result.found:
            return self._done_without_lookup(stix_objects, result.summary())
        conversion = convert([result.as_enrichment()], self._options, now=datetime.now(UTC))
        objects = merge_objects(stix_objects, conversion.objects)
        self._send(objects)
        return f"{result.summary()}; {len(objects)} objects sent"

    def _done_without_lookup(self, stix_objects: list[dict], message: str) -> str:
        self._helper.connector_logger.info(message)
        self._send_back_in_playbook(stix_objects)
        return message

    def _send_back_in_playbook(self, stix_objects: list[dict]) -> None:
        """A playbook step waits for a bundle: hand the original one to the next step."""
        if self._helper.playbook is not None:
            self._send(stix_objects)

    def _send(self, objects: list[dict]) -> None:
        self._helper.send_stix2_bundle(json.dumps(make_bundle(objects)), cleanup_inconsistent_bundle=True)


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
        type="INTERNAL_ENRICHMENT",
        scope=",".join(settings.connector.scope),
        auto=settings.connector.auto,
        log_level=settings.connector.log_level,
    )
    return config


class _Stopper:
    """Stops the helper's consumer on SIGTERM/SIGINT once the message in progress is done."""

    def __init__(self, helper: OpenCTIConnectorHelper) -> None:
        self._helper = helper
        self.requested = threading.Event()

    def install(self) -> None:
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signal_number, self._on_signal)

    def _on_signal(self, signal_number: int, frame: object) -> None:
        self.requested.set()
        queue = getattr(self._helper, "listen_queue", None)
        if queue is None:
            return
        queue.exit_event.set()
        connection = queue.pika_connection
        if connection is not None and queue.channel is not None:
            try:
                connection.add_callback_threadsafe(queue.channel.stop_consuming)
            except Exception:
                return


def _message_in_progress(helper: OpenCTIConnectorHelper) -> bool:
    queue = getattr(helper, "listen_queue", None)
    handler = getattr(queue, "thread", None)
    return handler is not None and handler.is_alive()


class _WithoutTraceback(logging.Filter):
    """Keeps pycti's start-up errors to one line: our own message says what to do."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


def _start_helper(settings: Settings, config: dict[str, Any]) -> OpenCTIConnectorHelper:
    api_logger = logging.getLogger("api")
    one_line = _WithoutTraceback()
    api_logger.addFilter(one_line)
    try:
        return _register(settings, config)
    finally:
        api_logger.removeFilter(one_line)


def _register(settings: Settings, config: dict[str, Any]) -> OpenCTIConnectorHelper:
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
            if attempt < START_ATTEMPTS:
                time.sleep(START_RETRY_SECONDS)
    raise SystemExit(1)


def run(config_file: Path = Path("config.yml")) -> int:
    """Start the connector and listen until SIGTERM; 2 for invalid settings, 1 when OpenCTI is unreachable."""
    try:
        content = read_config_file(config_file)
        settings = settings_from(Settings, content)
    except SettingsError as error:
        print(f"malbeacon-connector: {error}", file=sys.stderr)
        return 2
    helper = _start_helper(settings, helper_config(settings, content))
    client = client_from_settings(settings.malbeacon)
    connector = MalbeaconConnector(settings, helper, client)
    stopper = _Stopper(helper)
    stopper.install()
    helper.connector_logger.info(
        "Malbeacon connector listening",
        {"scope": ",".join(settings.connector.scope), "max_tlp": settings.malbeacon.max_tlp},
    )
    listener = threading.Thread(target=helper.listen, args=(connector.process_message,), name="listen", daemon=True)
    listener.start()
    while listener.is_alive() and not stopper.requested.is_set():
        listener.join(timeout=0.5)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while listener.is_alive() and _message_in_progress(helper) and time.monotonic() < deadline:
        listener.join(timeout=0.1)  # the message in progress is finished and reported
    ping = getattr(helper, "ping", None)
    if ping is not None:
        ping.stop()
    client.close()
    helper.connector_logger.info("Malbeacon connector stopped")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # the helper's broker threads are not daemons and may sleep up to 10 s
