"""What is decided before any Malbeacon request: is the entity in scope, and what is its TLP."""

from collections.abc import Iterable, Mapping

from .tlp import MARKING_DEFINITIONS, most_restrictive, normalise_tlp
from .values import STIX_TYPES

_TLP_OF_MARKING_ID = {definition["id"]: tlp for tlp, definition in MARKING_DEFINITIONS.items()}
_CANONICAL_TYPES = {name.lower(): name for name in STIX_TYPES} | {
    stix_type: name for name, stix_type in STIX_TYPES.items()
}


def canonical_type(entity_type: str) -> str | None:
    """The OpenCTI spelling of a supported entity type (`ipv4-addr` -> `IPv4-Addr`), None for others."""
    return _CANONICAL_TYPES.get(entity_type.strip().lower())


def in_scope(entity_type: str, scope: Iterable[str]) -> bool:
    """Whether an OpenCTI entity type is in the configured scope (case-insensitive)."""
    return entity_type.lower() in {entry.lower() for entry in scope}


def _tlp_of(definition: object) -> str:
    """The TLP level a marking names; TLP:RED when it claims to be TLP but names no known level."""
    try:
        return normalise_tlp(str(definition))
    except ValueError:
        return "TLP:RED"


def entity_tlp(markings: object) -> str:
    """The most restrictive TLP among an entity's markings (OpenCTI API shape); TLP:CLEAR when none.

    A marking that claims to be TLP but names no known level counts as TLP:RED: when in
    doubt, nothing leaves the platform. Entries that are not markings are ignored.
    """
    levels = []
    for marking in markings if isinstance(markings, list) else ():
        if not isinstance(marking, Mapping):
            continue
        definition = str(marking.get("definition") or "")
        if str(marking.get("definition_type") or "").upper() == "TLP" or definition.upper().startswith("TLP:"):
            levels.append(_tlp_of(definition))
    return most_restrictive(levels)


def bundle_tlp(stix_entity: Mapping, stix_objects: Iterable[Mapping]) -> str:
    """The most restrictive TLP among the STIX marking references of an entity, read from the bundle.

    Standard TLP marking ids are known without their definitions; other references are read
    from the bundle's marking definitions, and ignored when absent (not TLP, or unknown here).
    """
    refs = stix_entity.get("object_marking_refs")
    definitions = {item.get("id"): item for item in stix_objects if isinstance(item, Mapping)}
    levels = []
    for ref in refs if isinstance(refs, list) else ():
        if ref in _TLP_OF_MARKING_ID:
            levels.append(_TLP_OF_MARKING_ID[ref])
            continue
        marking = definitions.get(ref) or {}
        if str(marking.get("x_opencti_definition_type") or "").upper() == "TLP":
            levels.append(_tlp_of(marking.get("x_opencti_definition")))
        elif str(marking.get("definition_type") or "").lower() == "tlp":
            tlp = marking.get("definition", {}).get("tlp") if isinstance(marking.get("definition"), Mapping) else None
            levels.append(_tlp_of(tlp))
    return most_restrictive(levels)
