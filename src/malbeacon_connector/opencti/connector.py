"""Message handling: an enrichment message in, one bundle and a one-line work message out.

Per message: scope check, auto-enrichment loop check, TLP gate (before any Malbeacon request),
what to look up (the observable, or an indicator's values: `targets.py`), enrichment, one bundle
(the original objects + the new ones). In a playbook the original bundle
goes back on every path, so the playbook never stalls. Nothing is kept from one message to the
next but the client's cache of Malbeacon answers.
"""

import threading
from datetime import UTC, datetime
from typing import Any

from pycti import OpenCTIConnectorHelper

from malbeacon_connector.malbeacon.client import MalbeaconClient
from malbeacon_connector.opencti.gate import bundle_tlp, canonical_type, entity_tlp, in_scope
from malbeacon_connector.opencti.metrics import NoMetrics
from malbeacon_connector.opencti.push import PushStopped, push_objects
from malbeacon_connector.opencti.targets import NotLookedUp, read_targets, target_name
from malbeacon_connector.opencti.trigger import author_id, is_automatic
from malbeacon_connector.pipeline import enrich_entities
from malbeacon_connector.settings import Settings
from malbeacon_connector.stix.builder import AUTHOR_ID
from malbeacon_connector.stix.bundle import merge_objects, without_dangling_refs
from malbeacon_connector.tlp import check_max_tlp, most_restrictive


class WorkFailed(Exception):
    """The enrichment could not be done; the work ends in error with this message."""


class MalbeaconConnector:
    """Handles enrichment messages for a helper, with a Malbeacon client."""

    def __init__(
        self,
        settings: Settings,
        helper: OpenCTIConnectorHelper,
        client: MalbeaconClient,
        metrics: NoMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._helper = helper
        self._client = client
        self._metrics = metrics if metrics is not None else NoMetrics()
        self.processing = threading.Event()  # set while a message is handled (what a stop waits for)

    def process_message(self, data: dict[str, Any]) -> str:
        """The helper's callback: returns the work message, raises WorkFailed on failure."""
        self.processing.set()
        try:
            return self._process(data)
        except WorkFailed:
            self._metrics.enrichment("failed")
            raise
        finally:
            self.processing.clear()

    def _process(self, data: dict[str, Any]) -> str:
        # the former bundle (pycti sets it for every enrichment, 6.0 to 7.x): handed back to a playbook on every path
        stix_objects: list[dict] = data["stix_objects"] or []
        opencti_entity: dict = data.get("enrichment_entity") or {}
        # playbook messages carry no entity_type: the entity read by the helper has it
        given_type = str(opencti_entity.get("entity_type") or data.get("entity_type") or "")
        entity_type = canonical_type(given_type) or given_type
        try:
            value = target_name(opencti_entity, data["stix_entity"])
            if self._own_automatic_enrichment(data, opencti_entity):
                return self._finish_without_bundle(
                    stix_objects,
                    f"{value!r} was created by this connector (author Malbeacon) and this enrichment is automatic: "
                    "not looked up, so that auto-enrichment does not loop over what Malbeacon returned, spending "
                    "API calls; enrich it manually to look it up (or set MALBEACON_SKIP_OWN_AUTO_ENRICHMENTS=false)",
                    "skipped",
                )
            return self._enrich(entity_type, value, data["stix_entity"], stix_objects, opencti_entity)
        except WorkFailed:
            self._send_back_in_playbook(stix_objects)
            raise
        except Exception as error:  # a playbook must get its bundle back whatever happened
            self._send_back_in_playbook(stix_objects)
            raise WorkFailed(
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

    def _enrich(
        self, entity_type: str, value: str, stix_entity: dict, stix_objects: list[dict], opencti_entity: dict
    ) -> str:
        settings = self._settings
        if not in_scope(entity_type, settings.connector.scope):
            return self._finish_without_bundle(
                stix_objects,
                f"{entity_type} {value!r} is out of scope ({', '.join(settings.connector.scope)}); "
                "nothing was asked to Malbeacon",
                "out_of_scope",
            )
        # the stored entity's markings, and those of the (playbook) bundle, which may be newer
        tlp = most_restrictive([entity_tlp(opencti_entity.get("objectMarking")), bundle_tlp(stix_entity, stix_objects)])
        max_tlp = settings.malbeacon.max_tlp
        if not check_max_tlp(tlp, max_tlp):
            return self._finish_without_bundle(
                stix_objects,
                f"{value!r} is {tlp}, above MALBEACON_MAX_TLP ({max_tlp}): not sent to Malbeacon",
                "refused_tlp",
            )
        try:
            targets = read_targets(entity_type, value, stix_entity, opencti_entity, tlp, settings)
        except NotLookedUp as reason:
            return self._finish_without_bundle(stix_objects, str(reason), "skipped")
        enriched = enrich_entities(self._client, targets.entities, settings.malbeacon, datetime.now(UTC))
        summary = targets.summary(enriched.outcomes)
        self._helper.connector_logger.info("Malbeacon enrichment", {"summary": summary})
        if any(outcome.error is not None for outcome in enriched.outcomes):
            raise WorkFailed(summary)
        if not any(outcome.found for outcome in enriched.outcomes):
            return self._finish_without_bundle(stix_objects, summary, "not_found")
        from_platform = {stix_object["id"] for stix_object in stix_objects}
        objects = without_dangling_refs(
            merge_objects(stix_objects, targets.new_objects(enriched.objects)), from_platform
        )
        self._send(objects)
        self._metrics.enrichment("found")
        return targets.summary(enriched.outcomes, objects)

    def _finish_without_bundle(self, stix_objects: list[dict], message: str, outcome: str) -> str:
        """End the work with `message` (counted as `outcome`), the original bundle back to a playbook."""
        self._helper.connector_logger.info(message)
        self._metrics.enrichment(outcome)
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
            push_objects(self._helper, objects, lambda: self._client.cancelled)
        except PushStopped as stopped:
            raise WorkFailed(str(stopped)) from stopped
        self._metrics.objects_sent(len(objects))
