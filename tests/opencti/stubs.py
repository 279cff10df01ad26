"""A stand-in for pycti's helper and the messages it hands the connector, for fast tests without a broker."""

import uuid
from types import SimpleNamespace
from typing import Any

from malbeacon_connector.opencti.trigger import INTERNAL_KEY
from malbeacon_connector.settings import Settings, settings_from
from malbeacon_connector.stix.ids import indicator_id, observable_id
from malbeacon_connector.stix.patterns import value_pattern
from malbeacon_connector.values import STIX_TYPES


class StubHelper:
    """What the connector uses of pycti's helper: its logger, the playbook context, the work and its name."""

    def __init__(self, work_name: object = None, playbook: dict | None = None) -> None:
        self.logged: list[str] = []
        self.connector_logger = SimpleNamespace(info=self._log, warning=self._log, error=self._log)
        self.playbook = playbook
        self.work_id = "work-1"
        self.api = SimpleNamespace(work=SimpleNamespace(get_work=self._get_work))
        self._work_name = work_name

    def _log(self, message: str, meta: object = None) -> None:
        self.logged.append(message)

    def _get_work(self, work_id: str) -> dict:
        if isinstance(self._work_name, Exception):
            raise self._work_name
        return {"id": work_id, "name": self._work_name}


def connector_settings(auto: bool = False, scope: str | None = None, **malbeacon: Any) -> Settings:
    """Valid connector settings (no environment needed), with `malbeacon` settings on top."""
    connector: dict[str, Any] = {"id": str(uuid.uuid4()), "auto": auto}
    if scope is not None:
        connector["scope"] = scope
    return settings_from(
        Settings,
        {
            "opencti": {"url": "http://127.0.0.1:8080", "token": "token"},
            "connector": connector,
            "malbeacon": {"api_key": "key", **malbeacon},
        },
    )


def message(
    value: str = "203.0.113.7",
    entity_type: str = "IPv4-Addr",
    *,
    markings: list[dict] | None = None,
    author: str | None = None,
    internal: dict | None = None,
) -> dict:
    """The event pycti hands the callback: the entity read from the platform, its STIX form and bundle."""
    stix_type = STIX_TYPES.get(entity_type, entity_type.lower())
    stix_entity = {"type": stix_type, "spec_version": "2.1", "id": observable_id(stix_type, value), "value": value}
    entity = {"entity_type": entity_type, "observable_value": value}
    return _event(stix_entity, entity, markings, author, internal)


def indicator_message(
    *values: tuple[str, str], pattern_type: str = "stix", name: str = "Known C2", **context: Any
) -> dict:
    """The event pycti hands the callback for an Indicator of some `(type, value)` pairs (default: the sample's
    C2 IP): its API reading and pycti's STIX form of it, both with `x_opencti_observable_values`; `context`:
    the `markings`, `author` and `internal` of `message`."""
    values = values or (("IPv4-Addr", "203.0.113.7"),)
    pattern = " OR ".join(value_pattern(STIX_TYPES.get(t, t.lower()), v)[1:-1] for t, v in values)
    observable_values = [{"type": entity_type, "value": value, "hashes": None} for entity_type, value in values]
    common = {"name": name, "pattern_type": pattern_type, "x_opencti_main_observable_type": values[0][0]}
    common["x_opencti_observable_values"] = observable_values
    stix_entity = {"type": "indicator", "spec_version": "2.1", "id": indicator_id(f"[{pattern}]"), **common}
    stix_entity.update(pattern=f"[{pattern}]", valid_from="2026-01-01T00:00:00.000Z", confidence=50)
    return _event(stix_entity, {"entity_type": "Indicator", **common}, **context)


def _event(
    stix_entity: dict,
    entity: dict,
    markings: list[dict] | None = None,
    author: str | None = None,
    internal: dict | None = None,
) -> dict:
    entity["objectMarking"] = markings or []
    entity["createdBy"] = {"standard_id": author} if author else None
    data = {"entity_id": stix_entity["id"], "stix_entity": stix_entity, "stix_objects": [stix_entity]}
    data["enrichment_entity"] = entity
    if internal is not None:
        data[INTERNAL_KEY] = internal
    return data
