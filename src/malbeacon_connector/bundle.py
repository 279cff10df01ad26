"""STIX bundles: merging new objects into existing ones without duplicates."""

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


def make_bundle(objects: list[dict]) -> dict:
    """A STIX 2.1 bundle of the objects."""
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}
