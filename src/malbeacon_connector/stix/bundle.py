"""STIX bundles: merging new objects into existing ones without duplicates; no reference left dangling."""

import uuid
from collections.abc import Iterable


def merge_objects(original: Iterable[dict], new: Iterable[dict]) -> list[dict]:
    """`original` then `new`; a new object replaces an original with the same id, in its place.

    Marking definitions are the exception: the platform's own version is kept.
    """
    merged: dict[str, dict] = {}
    for stix_object in original:
        merged.setdefault(stix_object["id"], stix_object)
    for stix_object in new:
        if stix_object["type"] != "marking-definition" or stix_object["id"] not in merged:
            merged[stix_object["id"]] = stix_object
    return list(merged.values())


GRANTED_REFS = "x_opencti_granted_refs"  # organisations: never in a bundle, the platform resolves them


def without_dangling_refs(objects: list[dict], checked: set[str]) -> list[dict]:
    """The objects, those with an id in `checked` without their top-level references to objects not
    among them (copies where changed).

    The objects to check are those the platform gave: the entity pycti rebuilds carries its nested
    refs (`resolves_to_refs`, ...) without their targets, and the platform's workers would retry, then
    drop the object, when a target cannot be read. The converter's own objects are self-contained.
    Organisations (`x_opencti_granted_refs`) stay.
    """
    known = {stix_object["id"] for stix_object in objects}
    return [_kept_refs(o, known) if o["id"] in checked else o for o in objects]


def _kept_refs(stix_object: dict, known: set[str]) -> dict:
    kept: dict = {}
    for key, value in stix_object.items():
        if key == GRANTED_REFS:
            kept[key] = value
        elif key.endswith("_ref") and isinstance(value, str):
            if value in known:
                kept[key] = value
        elif key.endswith("_refs") and isinstance(value, list):
            if refs := [ref for ref in value if ref in known]:
                kept[key] = refs
        else:
            kept[key] = value
    return stix_object if kept == stix_object else kept


def make_bundle(objects: list[dict]) -> dict:
    """A STIX 2.1 bundle of the objects."""
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}
