"""Changes to the enriched observable itself: Malbeacon's reference, its tags as labels, a raised score.

Written into OpenCTI's observable extension (moving any top-level `x_opencti_*` copy there),
as pycti's `put_attribute_in_extension` does, on a copy: the caller's object is not modified.
"""

import copy
from typing import Any

SCO_EXTENSION = "extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82"


def _take(stix_object: dict, key: str) -> Any:
    """The value of an OpenCTI attribute wherever it is; its top-level copy is removed."""
    top_level = stix_object.pop(f"x_opencti_{key}", None)
    extension = stix_object.get("extensions", {}).get(SCO_EXTENSION, {})
    return extension.get(key, top_level)


def reference_identity(reference: dict) -> tuple:
    """What identifies an external reference on the platform: its URL, else its source and id."""
    if reference.get("url"):
        return ("url", reference["url"])
    return ("source", reference.get("source_name"), reference.get("external_id"))


def updated_entity(stix_object: dict, reference: dict, labels: list[str], score: int) -> dict:
    """A copy with `reference` (replacing an older one of the same identity), `labels` added, and
    the score raised to `score` when lower or unset (never lowered)."""
    updated = copy.deepcopy(stix_object)
    current_references = _take(updated, "external_references") or []
    current_labels = _take(updated, "labels") or []
    current_score = _take(updated, "score")
    extension = updated.setdefault("extensions", {}).setdefault(SCO_EXTENSION, {"extension_type": "property-extension"})
    kept = [ref for ref in current_references if reference_identity(ref) != reference_identity(reference)]
    extension["external_references"] = [*kept, reference]
    if labels or current_labels:
        extension["labels"] = list(dict.fromkeys([*current_labels, *labels]))
    extension["score"] = score if not isinstance(current_score, int) or current_score < score else current_score
    return updated
