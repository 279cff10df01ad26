"""What an enrichment message asks to look up: the observable itself, or the values of an indicator.

An indicator is looked up by the observable values the platform read from its pattern, never by
parsing the pattern: `x_opencti_observable_values` (`[{type, value}]`) in pycti's reading of it (the API
entity, and the STIX form pycti builds from it), `observable_values` in the OpenCTI extension of the
platform's STIX export (a playbook's bundle). Only the values of a STIX pattern whose types are in
CONNECTOR_SCOPE are looked up, each as the observable of that value (its deterministic id, so that the
platform merges the knowledge into the existing observable) with the indicator's TLP; the indicator
then `indicates` every C2 panel one of its values is (see `stix/convert.py`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from malbeacon_connector.opencti.gate import canonical_type, in_scope
from malbeacon_connector.pipeline import LookupOutcome, counted, entity_for_value
from malbeacon_connector.settings import Settings
from malbeacon_connector.stix.models import EnrichedEntity
from malbeacon_connector.values import normalise_value

INDICATOR = "Indicator"
OCTI_EXTENSION = "extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba"  # OpenCTI's, on STIX domain objects
MAX_LISTED = 5  # values left out, named in the work message at most


class NotLookedUp(Exception):
    """Nothing of the entity can be asked to Malbeacon: the work succeeds with this message."""


@dataclass(frozen=True)
class Targets:
    """The entities one message looks up and, for an indicator, what to say of it."""

    entities: tuple[EnrichedEntity, ...]
    indicator: Mapping[str, Any] | None = None  # the indicator's STIX form, when the values are an indicator's
    name: str = ""
    left_out: tuple[str, ...] = ()  # the indicator's values not looked up, each with why
    infrastructure: bool = True  # MALBEACON_CREATE_INFRASTRUCTURE: panels (and so `indicates`) are made

    def new_objects(self, converted: list[dict]) -> list[dict]:
        """What to merge into the original objects: the converted ones and, for an indicator, the indicator
        itself (the source of its `indicates`) without `confidence`, which the connector's user gives."""
        if self.indicator is None:
            return converted
        indicator = {key: value for key, value in self.indicator.items() if key != "confidence"}
        return [indicator, *converted]

    def summary(self, outcomes: Sequence[LookupOutcome], objects: Sequence[dict] | None = None) -> str:
        """The work message: each lookup's line; for an indicator, what it indicates; the objects sent."""
        sent = None if objects is None else len(objects)
        if self.indicator is None:
            (outcome,) = outcomes
            return outcome.summary(objects_sent=sent)
        parts = [f"{INDICATOR} {self.name!r}: " + " | ".join(outcome.summary() for outcome in outcomes)]
        if self.left_out:
            parts.append(f"not looked up: {listed(self.left_out)}")
        if objects is not None:
            parts += [self._indicated(objects), f"{counted(len(objects), 'object')} sent"]
        return "; ".join(parts)

    def _indicated(self, objects: Sequence[dict]) -> str:
        indicator_id = self.indicator["id"] if self.indicator is not None else None
        panels = {
            stix_object["target_ref"]
            for stix_object in objects
            if stix_object.get("relationship_type") == "indicates" and stix_object.get("source_ref") == indicator_id
        }
        if panels:
            return f"indicates {counted(len(panels), 'C2 infrastructure')}"
        if not self.infrastructure:
            return "indicates nothing: no infrastructure is made (MALBEACON_CREATE_INFRASTRUCTURE=false)"
        return "indicates no C2 infrastructure: none of its values is a C2 panel"


def listed(items: Sequence[str]) -> str:
    """The first few items, and how many more."""
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def is_indicator(entity_type: str) -> bool:
    """Whether an entity type is OpenCTI's Indicator (any case)."""
    return entity_type.strip().lower() == INDICATOR.lower()


def target_name(opencti_entity: Mapping[str, Any], stix_entity: Mapping[str, Any]) -> str:
    """What the entity is called in work messages: an observable's value, an indicator's name (or pattern)."""
    for source, key in (
        (opencti_entity, "observable_value"),
        (stix_entity, "value"),
        (opencti_entity, "name"),
        (stix_entity, "name"),
        (stix_entity, "pattern"),
    ):
        if isinstance(source.get(key), str) and source[key]:
            return source[key]
    return ""


def read_targets(
    entity_type: str, value: str, stix_entity: dict, opencti_entity: Mapping[str, Any], tlp: str, settings: Settings
) -> Targets:
    """The entities to look up for an entity in scope whose TLP passed the gate (`value`: its `target_name`);
    raises NotLookedUp."""
    if is_indicator(entity_type):
        return _indicator_targets(value, stix_entity, opencti_entity, tlp, settings)
    try:
        _, normalised = normalise_value(value, entity_type)
    except ValueError as error:
        raise NotLookedUp(f"cannot be looked up in Malbeacon: {error}") from None
    return Targets((EnrichedEntity(stix_entity, entity_type, normalised, tlp),))


def pattern_type(stix_entity: Mapping[str, Any], opencti_entity: Mapping[str, Any]) -> str:
    """An indicator's pattern type as given (`stix`, `sigma`, ...), empty when none is."""
    given = stix_entity.get("pattern_type") or opencti_entity.get("pattern_type")
    return given.strip() if isinstance(given, str) else ""


def indicator_values(stix_entity: Mapping[str, Any], opencti_entity: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The `(type, value)` pairs the platform read from an indicator's pattern, from the first place holding
    some: pycti's STIX form, the platform's STIX export (its OpenCTI extension), pycti's API reading. A value
    without a type has the indicator's main observable type."""
    extension = _mapping(_mapping(stix_entity.get("extensions")).get(OCTI_EXTENSION))
    main_type = (
        stix_entity.get("x_opencti_main_observable_type")
        or extension.get("main_observable_type")
        or opencti_entity.get("x_opencti_main_observable_type")
    )
    for candidate in (
        stix_entity.get("x_opencti_observable_values"),
        extension.get("observable_values"),
        opencti_entity.get("x_opencti_observable_values"),
    ):
        pairs = [pair for entry in _list(candidate) if (pair := _pair(entry, main_type)) is not None]
        if pairs:
            return pairs
    return []


def _indicator_targets(
    name: str, stix_entity: Mapping[str, Any], opencti_entity: Mapping[str, Any], tlp: str, settings: Settings
) -> Targets:
    kind = pattern_type(stix_entity, opencti_entity)
    if kind.lower() != "stix":
        raise NotLookedUp(
            f"{INDICATOR} {name!r} has a {kind or 'missing'} pattern type: only the observable values of STIX "
            "patterns are looked up; nothing was asked to Malbeacon"
        )
    entities: dict[tuple[str, str], EnrichedEntity] = {}
    left_out: list[str] = []
    for given_type, given_value in indicator_values(stix_entity, opencti_entity):
        entity_type = canonical_type(given_type)
        if entity_type is None:
            left_out.append(f"{given_value!r} ({given_type}): a type Malbeacon is not asked for")
        elif not in_scope(entity_type, settings.connector.scope):
            left_out.append(f"{given_value!r} ({entity_type}): not in CONNECTOR_SCOPE")
        else:
            try:
                _, normalised = normalise_value(given_value, entity_type)
            except ValueError as error:
                left_out.append(f"{given_value!r} ({entity_type}): {error}")
                continue
            entity = entity_for_value(normalised, entity_type, tlp)
            entities.setdefault(entity.key, replace(entity, indicator_id=stix_entity["id"]))
    if not entities:
        why = listed(left_out) if left_out else "it holds no observable value"
        raise NotLookedUp(
            f"{INDICATOR} {name!r} has no value Malbeacon can be asked for ({why}); nothing was asked to Malbeacon"
        )
    return Targets(
        tuple(entities.values()),
        stix_entity,
        name,
        tuple(left_out),
        settings.malbeacon.create_infrastructure,
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _pair(entry: object, main_type: object) -> tuple[str, str] | None:
    """`(type, value)` of one observable value entry; None when it has no text value or no type."""
    entry = _mapping(entry)
    value, entry_type = entry.get("value"), entry.get("type") or main_type
    if not isinstance(value, str) or not value.strip() or not isinstance(entry_type, str) or not entry_type.strip():
        return None
    return entry_type.strip(), value.strip()
