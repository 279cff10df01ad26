"""What is decided before any Malbeacon request: is the entity in scope, and what is its TLP.

TLP markings are read in every form their producers write: OpenCTI's API (`definition_type`,
`definition`) and STIX export (`x_opencti_definition_type`, `x_opencti_definition`, `name`), STIX 2.1
TLP 1.0 definitions, the OASIS TLP 2.0 extension, and the standard ids of both. Whatever claims to
be TLP but cannot be read, and whatever is malformed, counts as TLP:RED.
"""

from collections.abc import Iterable, Iterator, Mapping

from malbeacon_connector.tlp import (
    MARKING_DEFINITIONS,
    TLP2_EXTENSION_ID,
    TLP2_MARKING_IDS,
    most_restrictive,
    normalise_tlp,
)
from malbeacon_connector.values import STIX_TYPES

UNREADABLE = "TLP:RED"  # the TLP of a marking that claims TLP but names no known level, or is malformed
_TLP_OF_MARKING_ID = {definition["id"]: tlp for tlp, definition in MARKING_DEFINITIONS.items()} | {
    marking_id: tlp for tlp, marking_id in TLP2_MARKING_IDS.items()
}
_API, _STIX = str, Mapping  # shape of a TLP `definition`: `"TLP:RED"` in OpenCTI's API, `{"tlp": "red"}` in STIX
_TEXT_FIELDS = ("definition", "x_opencti_definition", "name")
_CANONICAL_TYPES = {name.lower(): name for name in STIX_TYPES} | {
    stix_type: name for name, stix_type in STIX_TYPES.items()
}


def canonical_type(entity_type: str) -> str | None:
    """The OpenCTI spelling of a supported entity type (`ipv4-addr` -> `IPv4-Addr`), None for others."""
    return _CANONICAL_TYPES.get(entity_type.strip().lower())


def in_scope(entity_type: str, scope: Iterable[str]) -> bool:
    """Whether an OpenCTI entity type is in the configured scope (case-insensitive)."""
    return entity_type.lower() in {entry.lower() for entry in scope}


def _claims_tlp(text: object) -> bool:
    """Whether a field's text names a TLP level (`TLP:...`, any case or spacing)."""
    return isinstance(text, str) and "".join(text.split()).upper().startswith("TLP:")


def _level(claim: object) -> str:
    """The level a TLP claim names (text, or a STIX `{"tlp": ...}` definition); TLP:RED when none is known."""
    if isinstance(claim, Mapping):
        claim = claim.get("tlp")
    if not isinstance(claim, str):
        return UNREADABLE
    try:
        return normalise_tlp(claim)
    except ValueError:
        return UNREADABLE


def _id_readings(marking: Mapping) -> Iterator[str]:
    """The level of a standard TLP 1.0 or 2.0 id (`id` in STIX, `standard_id` in OpenCTI's API)."""
    for key in ("id", "standard_id"):
        marking_id = marking.get(key)
        if isinstance(marking_id, str) and marking_id.strip().lower() in _TLP_OF_MARKING_ID:
            yield _TLP_OF_MARKING_ID[marking_id.strip().lower()]


def _typed_readings(marking: Mapping, definition_shape: type) -> Iterator[str]:
    """The level of a TLP-typed definition; TLP:RED when that definition is missing or of the wrong shape."""
    for type_key, definition_key, shape in (
        ("definition_type", "definition", definition_shape),
        ("x_opencti_definition_type", "x_opencti_definition", _API),
    ):
        kind, definition = marking.get(type_key), marking.get(definition_key)
        if isinstance(kind, str) and kind.strip().upper() == "TLP":
            yield _level(definition) if isinstance(definition, shape) else UNREADABLE
        elif _claims_tlp(kind):  # `definition_type: "TLP:GREEN"`, as some producers write it
            yield _level(kind)


def _named_readings(marking: Mapping) -> Iterator[str]:
    """Levels in text fields (`name: "TLP:RED"`), in a `{"tlp": ...}` definition, in the TLP 2.0 extension."""
    for key in _TEXT_FIELDS:
        if _claims_tlp(marking.get(key)):
            yield _level(marking.get(key))
    definition = marking.get("definition")
    if isinstance(definition, Mapping) and "tlp" in definition:
        yield _level(definition)
    extensions = marking.get("extensions")
    if isinstance(extensions, Mapping) and TLP2_EXTENSION_ID in extensions:
        extension = extensions[TLP2_EXTENSION_ID]
        yield _level(extension.get("tlp_2_0") if isinstance(extension, Mapping) else None)


def _strictest(levels: Iterable[str | None]) -> str | None:
    """The most restrictive of some readings, None when none is a TLP."""
    found = [level for level in levels if level is not None]
    return most_restrictive(found) if found else None


def marking_tlp(marking: object, definition_shape: type = _STIX) -> str | None:
    """The TLP a marking names, None when it names none; `definition_shape`: `str` for OpenCTI's API.

    Every field producers write a TLP in is read, and the most restrictive reading wins; a marking
    that claims TLP but names no known level or is malformed, and one that is not a mapping at all,
    count as TLP:RED.
    """
    if not isinstance(marking, Mapping):
        return UNREADABLE
    return _strictest([*_id_readings(marking), *_typed_readings(marking, definition_shape), *_named_readings(marking)])


def entity_tlp(markings: object) -> str:
    """The most restrictive TLP among an entity's markings (OpenCTI API shape); TLP:CLEAR when none.

    Malformed markings (not a list, an entry that is not a marking) count as TLP:RED: when in
    doubt, nothing leaves the platform.
    """
    if markings is None:
        return "TLP:CLEAR"
    if not isinstance(markings, list):
        return UNREADABLE
    return _strictest(marking_tlp(marking, _API) for marking in markings) or "TLP:CLEAR"


def _definitions(stix_objects: object) -> dict[str, list[Mapping]]:
    """The bundle's objects by id; every object of an id is kept (all are read)."""
    found: dict[str, list[Mapping]] = {}
    for item in stix_objects if isinstance(stix_objects, Iterable) else ():
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            found.setdefault(item["id"], []).append(item)
    return found


def _ref_tlp(ref: object, definitions: Mapping[str, list[Mapping]]) -> str | None:
    """The TLP of one marking reference: its standard id and every definition of it in the bundle."""
    if not isinstance(ref, str):
        return UNREADABLE
    return _strictest([marking_tlp({"id": ref}), *(marking_tlp(item) for item in definitions.get(ref, ()))])


def bundle_tlp(stix_entity: object, stix_objects: object) -> str:
    """The most restrictive TLP among the STIX marking references of an entity, read from the bundle.

    Standard TLP 1.0 and 2.0 ids are known without their definitions; other references are read
    from the bundle's marking definitions, and ignored when absent (not TLP, or unknown here).
    Malformed references (not a list, a reference that is not an id) count as TLP:RED.
    """
    if not isinstance(stix_entity, Mapping):
        return UNREADABLE
    refs = stix_entity.get("object_marking_refs")
    if refs is None:
        return "TLP:CLEAR"
    if not isinstance(refs, list):
        return UNREADABLE
    definitions = _definitions(stix_objects)
    return _strictest(_ref_tlp(ref, definitions) for ref in refs) or "TLP:CLEAR"
