"""The OpenCTI connector: pycti's helper in, one bundle and a one-line work message out.

The only module that knows pycti. Per message: scope check, TLP gate (before any
Malbeacon request), enrichment, one bundle (the original objects + the new ones).
In a playbook the original bundle goes back on every path, so the playbook never stalls.
Nothing is kept from one message to the next but the client's cache of Malbeacon answers.
"""

import contextlib
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

import pycti.connector.opencti_connector_helper as pycti_helper
from pycti import OpenCTIConnectorHelper

from malbeacon_connector.malbeacon.client import MalbeaconClient, client_from_settings
from malbeacon_connector.opencti.gate import bundle_tlp, canonical_type, entity_tlp, in_scope
from malbeacon_connector.opencti.push import PushStopped, push_bundle
from malbeacon_connector.opencti.trigger import author_id, capture_internal, is_automatic
from malbeacon_connector.pipeline import conversion_options, enrich, lookup_plan
from malbeacon_connector.settings import Settings, SettingsError, read_config_file, settings_from
from malbeacon_connector.stix.builder import AUTHOR_ID
from malbeacon_connector.stix.bundle import make_bundle, merge_objects, without_dangling_refs
from malbeacon_connector.stix.convert import EnrichedEntity, convert
from malbeacon_connector.tlp import most_restrictive
from malbeacon_connector.values import normalise_value

START_ATTEMPTS = 3
START_RETRY_SECONDS = 5.0
STOP_GRACE_SECONDS = 6.0
STOP_REPORT_SECONDS = 2.5


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
        given_type = str(opencti_entity.get("entity_type") or data.get("entity_type") or "")
        entity_type = canonical_type(given_type) or given_type
        try:
            if self._own_automatic_enrichment(data, opencti_entity):
                value = str(opencti_entity.get("observable_value") or data["stix_entity"].get("value") or "")
                return self._finish_without_bundle(
                    stix_objects,
                    f"{value!r} was created by this connector (author Malbeacon) and this enrichment is automatic: "
                    "not looked up, so that auto-enrichment does not loop over what Malbeacon returned, spending "
                    "API calls; enrich it manually to look it up (or set MALBEACON_SKIP_OWN_AUTO_ENRICHMENTS=false)",
                )
            return self._enrich(entity_type, data["stix_entity"], stix_objects, opencti_entity)
        except EnrichmentFailed:
            self._send_back_in_playbook(stix_objects)
            raise
        except Exception as error:  # a playbook must get its bundle back whatever happened
            self._send_back_in_playbook(stix_objects)
            raise EnrichmentFailed(
                f"unexpected error ({error.__class__.__name__}: {str(error)[:200]}); the connector goes on with "
                "the next enrichment"
            ) from error

    def _own_automatic_enrichment(self, data: dict[str, Any], opencti_entity: dict) -> bool:
        """An auto-enrichment of an observable this connector created (a playbook step is never one)."""
        if not (self._settings.malbeacon.skip_own_auto_enrichments and self._settings.connector.auto):
            return False
        if self._helper.playbook is not None or author_id(opencti_entity, data.get("stix_entity") or {}) != AUTHOR_ID:
            return False
        return is_automatic(data, self._work_name)

    def _work_name(self) -> str | None:
        """The name the platform gave the work (read only when pycti gave no `internal` part)."""
        try:
            work = self._helper.api.work.get_work(self._helper.work_id) if self._helper.work_id else None
        except Exception as error:
            self._helper.connector_logger.warning("Cannot read the work's name", {"error": str(error)[:200]})
            return None
        return str(work.get("name") or "") if isinstance(work, dict) else None

    def _enrich(self, entity_type: str, stix_entity: dict, stix_objects: list[dict], opencti_entity: dict) -> str:
        settings = self._settings
        value = str(opencti_entity.get("observable_value") or stix_entity.get("value") or "")
        if not in_scope(entity_type, settings.connector.scope):
            return self._finish_without_bundle(
                stix_objects,
                f"{entity_type} {value!r} is out of scope ({', '.join(settings.connector.scope)}); "
                "nothing was asked to Malbeacon",
            )
        # the stored entity's markings, and those of the (playbook) bundle, which may be newer
        tlp = most_restrictive([entity_tlp(opencti_entity.get("objectMarking")), bundle_tlp(stix_entity, stix_objects)])
        max_tlp = settings.malbeacon.max_tlp
        if not OpenCTIConnectorHelper.check_max_tlp(tlp, max_tlp):
            return self._finish_without_bundle(
                stix_objects, f"{value!r} is {tlp}, above MALBEACON_MAX_TLP ({max_tlp}): not sent to Malbeacon"
            )
        try:
            normalised, _ = normalise_value(value, entity_type)
        except ValueError as error:
            return self._finish_without_bundle(stix_objects, f"cannot be looked up in Malbeacon: {error}")
        entity = EnrichedEntity(stix_entity, entity_type, normalised, tlp)
        result = enrich(self._client, entity, self._plan[entity_type], settings.malbeacon.max_records)
        summary = result.summary()
        self._helper.connector_logger.info("Malbeacon enrichment", {"summary": summary})
        if result.error is not None:
            raise EnrichmentFailed(summary)
        if not result.found:
            return self._finish_without_bundle(stix_objects, summary)
        conversion = convert([result.as_enrichment()], self._options, now=datetime.now(UTC))
        from_platform = {stix_object["id"] for stix_object in stix_objects}
        objects = without_dangling_refs(merge_objects(stix_objects, conversion.objects), from_platform)
        self._send(objects)
        return result.summary(objects_sent=len(objects))

    def _finish_without_bundle(self, stix_objects: list[dict], message: str) -> str:
        self._helper.connector_logger.info(message)
        self._send_back_in_playbook(stix_objects)
        return message

    def _send_back_in_playbook(self, stix_objects: list[dict]) -> None:
        """A playbook step waits for a bundle: hand the original one to the next step."""
        if self._helper.playbook is None:
            return
        try:
            self._send(stix_objects)
        except Exception as error:
            self._helper.connector_logger.error("Cannot hand the bundle back to the playbook", {"error": str(error)})

    def _send(self, objects: list[dict]) -> None:
        try:
            push_bundle(self._helper, json.dumps(make_bundle(objects)), lambda: self._client.cancelled)
        except PushStopped as stopped:
            raise EnrichmentFailed(str(stopped)) from stopped


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
    """SIGTERM/SIGINT: stop taking messages; the one in progress is finished (or cut short) and reported."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.helper: OpenCTIConnectorHelper | None = None

    def install(self) -> None:
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signal_number, self._on_signal)

    def _on_signal(self, signal_number: int, frame: object) -> None:
        self.requested.set()
        queue = getattr(self.helper, "listen_queue", None)
        if queue is None:
            return
        queue.exit_event.set()
        connection = queue.pika_connection
        if connection is not None and queue.channel is not None:
            with contextlib.suppress(Exception):  # the connection may be closed already: exiting anyway
                connection.add_callback_threadsafe(queue.channel.stop_consuming)


def _busy(helper: OpenCTIConnectorHelper) -> bool:
    """A message is being processed."""
    handler = getattr(getattr(helper, "listen_queue", None), "thread", None)
    return handler is not None and handler.is_alive()


def _consuming(helper: OpenCTIConnectorHelper) -> bool:
    """The helper is connected to the broker (it may be about to hand over a message)."""
    connection = getattr(getattr(helper, "listen_queue", None), "pika_connection", None)
    return connection is not None and connection.is_open


def _finish(helper: OpenCTIConnectorHelper, listener: threading.Thread, client: MalbeaconClient) -> None:
    """Let the message in progress finish; past the grace period, cut its lookup (or its push, before the next
    transaction) short so that it ends in error."""
    grace_end = time.monotonic() + STOP_GRACE_SECONDS
    while listener.is_alive() and time.monotonic() < grace_end and (_busy(helper) or _consuming(helper)):
        listener.join(timeout=0.1)
    if listener.is_alive() and _busy(helper):
        helper.connector_logger.warning("Stopping: the enrichment in progress is cut short")
        client.cancel()
        report_end = time.monotonic() + STOP_REPORT_SECONDS
        while _busy(helper) and time.monotonic() < report_end:
            listener.join(timeout=0.1)


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
            last = attempt == START_ATTEMPTS
            if stopper.requested.is_set() or (not last and stopper.requested.wait(START_RETRY_SECONDS)):
                return None
    finally:
        api_logger.removeFilter(one_line)
    raise SystemExit(1)


def run(config_file: Path = Path("config.yml"), required: bool = False) -> int:
    """Run the connector until SIGTERM (0); 2 for invalid settings; 1 when OpenCTI or the broker fails it.

    `required`: the config file was named explicitly, so it must exist and be readable.
    """
    try:
        content = read_config_file(config_file, required)
        settings = settings_from(Settings, content)
    except SettingsError as error:
        print(f"malbeacon-connector: {error}", file=sys.stderr)
        return 2
    stopper = _Stopper()
    stopper.install()
    helper = _start_helper(settings, helper_config(settings, content), stopper)
    if helper is None:
        return 0
    stopper.helper = helper
    if not capture_internal(getattr(pycti_helper, "ListenQueue", None)):
        helper.connector_logger.info("This pycti keeps no message mode: automatic enrichments are told by work name")
    client = client_from_settings(settings.malbeacon)
    connector = MalbeaconConnector(settings, helper, client)
    helper.connector_logger.info(
        "Malbeacon connector listening",
        {"scope": ",".join(settings.connector.scope), "max_tlp": settings.malbeacon.max_tlp},
    )
    listener = threading.Thread(target=helper.listen, args=(connector.process_message,), name="listen", daemon=True)
    listener.start()
    while listener.is_alive() and not stopper.requested.is_set():
        listener.join(timeout=0.5)
    status = 0
    if stopper.requested.is_set():
        _finish(helper, listener, client)
        helper.connector_logger.info("Malbeacon connector stopped")
    else:
        print("malbeacon-connector: the listener stopped unexpectedly; see the log above", file=sys.stderr)
        status = 1
    ping = getattr(helper, "ping", None)
    if ping is not None:
        ping.stop()
    client.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # the helper's broker threads are not daemons and may sleep up to 10 s
