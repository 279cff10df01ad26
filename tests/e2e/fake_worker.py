"""The platform's worker for the fake platform: imports pushed objects with the platform's own rules.

The real worker imports each pushed object through the platform, which does not simply store it:
- an observable is created, or upserted: score, labels and description change only when the
  connector's confidence reaches the entity's; external references are added by their platform
  identity (URL, else source and external id) and never removed;
- an indicator gets the `valid_until` the platform computes, and is stored revoked when that is past;
  a new one becomes an entity of the platform, like a new observable;
- a relationship outside the platform's mapping is refused (an import error; the rest goes on);
- a country is matched by its name or aliases (the id sent is kept in `x_opencti_stix_ids`);
- every observable or indicator created in the scope of a registered auto-enrichment connector is sent back
  to it as an automatic enrichment (`mode: auto`, `trigger: create`), its own bundles' ones included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from platform_rules import (
    OBSERVABLE_TYPES,
    external_reference_id,
    relationship_refusal,
    revoked_on_arrival,
    stored_valid_until,
)

if TYPE_CHECKING:
    from .fake_opencti import FakeOpenCTI

OCTI_SCO_EXT = "extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82"
VALUE_TYPES = {"ipv4-addr", "ipv6-addr", "domain-name", "url", "user-agent"}  # enrichable observables


@dataclass
class ImportReport:
    """What one import did: standard ids created and upserted, refusals, automatic enrichments sent."""

    created: list[str] = field(default_factory=list)
    upserted: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    auto_enrichments: list[str] = field(default_factory=list)  # work ids


def unique_objects(bundles: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The objects of split bundles, each once, in the order they first appear (dependencies first)."""
    objects: dict[str, dict[str, Any]] = {}
    for bundle in bundles:
        for stix_object in bundle["objects"]:
            objects.setdefault(stix_object["id"], {k: v for k, v in stix_object.items() if k != "nb_deps"})
    return list(objects.values())


def import_objects(platform: FakeOpenCTI, objects: list[dict[str, Any]], now: datetime) -> ImportReport:
    """Import objects into the fake platform as its worker would; see the module docstring."""
    index = {stix_object["id"]: stix_object for stix_object in objects}
    report = ImportReport()
    for stix_object in objects:
        stix_type = stix_object["type"]
        if stix_type in VALUE_TYPES:
            _observable(platform, stix_object, index, report)
        elif stix_type == "indicator":
            _indicator(platform, stix_object, index, report, now)
        elif stix_type == "relationship":
            _relationship(platform, stix_object, index, report)
        elif stix_type == "location":
            _location(platform, stix_object)
        elif stix_type != "marking-definition":
            platform.store_knowledge(dict(stix_object))
    return report


def _attribute(stix_object: Mapping[str, Any], key: str) -> Any:
    """An OpenCTI attribute of an observable, in its extension or at the top level."""
    extension = (stix_object.get("extensions") or {}).get(OCTI_SCO_EXT) or {}
    return extension.get(key, stix_object.get(f"x_opencti_{key}"))


def _observable(
    platform: FakeOpenCTI, stix_object: dict[str, Any], index: Mapping[str, Any], report: ImportReport
) -> None:
    references = _attribute(stix_object, "external_references") or []
    existing = platform.entity(stix_object["id"])
    if existing is None:
        author = index.get(_attribute(stix_object, "created_by_ref") or "") or {}
        platform.add_entity(
            OBSERVABLE_TYPES[stix_object["type"]],
            stix_object["value"],
            [name for name in map(platform.tlp_name, stix_object.get("object_marking_refs") or []) if name],
            standard_id=stix_object["id"],
            score=_attribute(stix_object, "score"),
            labels=_attribute(stix_object, "labels") or [],
            created_by=author.get("name"),
            description=_attribute(stix_object, "description"),
        )
        platform.add_external_references(stix_object["id"], references)
        report.created.append(stix_object["id"])
        report.auto_enrichments += platform.auto_enrich(stix_object["id"])
        return
    with platform.editing(stix_object["id"]) as entity:
        if platform.connector_confidence >= platform.confidences.get(entity["standard_id"], 0):  # confidence control
            if _attribute(stix_object, "score") is not None:
                entity["x_opencti_score"] = _attribute(stix_object, "score")
            if _attribute(stix_object, "description"):
                entity["x_opencti_description"] = _attribute(stix_object, "description")
            known = {label["value"] for label in entity["objectLabel"]}
            entity["objectLabel"] += [
                platform.label(v) for v in _attribute(stix_object, "labels") or [] if v not in known
            ]
    platform.add_external_references(stix_object["id"], references)
    report.upserted.append(stix_object["id"])


def _indicator(
    platform: FakeOpenCTI, indicator: dict[str, Any], index: Mapping[str, Any], report: ImportReport, now: datetime
) -> None:
    valid_until = stored_valid_until(indicator)
    platform.store_knowledge(
        {**indicator, "valid_until": valid_until.isoformat(), "revoked": revoked_on_arrival(indicator, now)}
    )
    if platform.entity(indicator["id"]) is not None:
        return
    author = index.get(indicator.get("created_by_ref") or "") or {}
    platform.add_indicator(
        indicator.get("pattern") or "",
        [name for name in map(platform.tlp_name, indicator.get("object_marking_refs") or []) if name],
        pattern_type=indicator.get("pattern_type") or "stix",
        name=indicator.get("name"),
        main_observable_type=indicator.get("x_opencti_main_observable_type"),
        standard_id=indicator["id"],
        score=indicator.get("x_opencti_score"),
        labels=indicator.get("labels") or [],
        created_by=author.get("name"),
        valid_from=indicator.get("valid_from"),
        valid_until=valid_until.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    )
    report.created.append(indicator["id"])
    report.auto_enrichments += platform.auto_enrich(indicator["id"])


def _relationship(
    platform: FakeOpenCTI, relationship: dict[str, Any], index: Mapping[str, Any], report: ImportReport
) -> None:
    source_type = relationship["source_ref"].split("--")[0]
    target_type = relationship["target_ref"].split("--")[0]
    refusal = relationship_refusal(relationship["relationship_type"], source_type, target_type)
    target = index.get(relationship["target_ref"]) or {}
    if refusal is None and target_type == "location" and target.get("x_opencti_location_type") != "Country":
        refusal = f"The relationship type located-at is not allowed between {source_type} and a non-country"
    if refusal is not None:
        report.refused.append(refusal)
        return
    platform.store_knowledge(dict(relationship))


def _location(platform: FakeOpenCTI, location: dict[str, Any]) -> None:
    """A country is matched by its name or any alias of a stored one; the sent id is kept on the match."""
    for stored in platform.knowledge_of("location"):
        if stored["id"] != location["id"] and _names(location) & _names(stored):
            stored.setdefault("x_opencti_stix_ids", [])
            if location["id"] not in stored["x_opencti_stix_ids"]:
                stored["x_opencti_stix_ids"].append(location["id"])
            return
    platform.store_knowledge(dict(location))


def _names(location: Mapping[str, Any]) -> set[str]:
    """A location's name and aliases, as the platform matches them (any case)."""
    return {location.get("name", "").lower(), *(alias.lower() for alias in location.get("x_opencti_aliases") or [])}


def reference_node(reference: Mapping[str, Any]) -> dict[str, Any]:
    """An external reference in the API shape, with the platform's standard id."""
    standard_id = external_reference_id(dict(reference))
    return {
        "id": standard_id,
        "standard_id": standard_id,
        "entity_type": "External-Reference",
        "source_name": reference.get("source_name"),
        "description": reference.get("description"),
        "url": reference.get("url"),
        "hash": None,
        "external_id": reference.get("external_id"),
        "importFiles": {"edges": []},
    }
