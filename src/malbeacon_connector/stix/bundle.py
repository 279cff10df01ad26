"""STIX bundles: merging new objects into existing ones without duplicates; no reference left dangling."""

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence


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


_BUNDLE_NAMESPACE = uuid.UUID("4a5bd3a2-21b2-5f0e-9a76-2f6d0f7c1b5e")


def make_bundle(objects: list[dict], deterministic: bool = False) -> dict:
    """A STIX 2.1 bundle of the objects; `deterministic`: its id derived from theirs (the same objects, the
    same bundle, byte for byte), else random."""
    if deterministic:
        bundle_uuid = uuid.uuid5(_BUNDLE_NAMESPACE, ",".join(stix_object["id"] for stix_object in objects))
    else:
        bundle_uuid = uuid.uuid4()
    return {"type": "bundle", "id": f"bundle--{bundle_uuid}", "objects": objects}


def references(stix_object: dict) -> list[str]:
    """The ids an object references at its top level (`*_ref`, `*_refs`)."""
    found: list[str] = []
    for key, value in stix_object.items():
        if key.endswith("_ref"):
            if isinstance(value, str):
                found.append(value)
        elif key.endswith("_refs") and isinstance(value, list):
            found.extend(ref for ref in value if isinstance(ref, str))
    return found


def dependencies_first(objects: Sequence[dict]) -> list[dict]:
    """The objects, each after those of them it references (depth first, otherwise in their order):
    the order in which pycti's splitter enlists them."""
    by_id = {stix_object["id"]: stix_object for stix_object in objects}
    placed: set[str] = set()
    ordered: list[dict] = []
    for stix_object in objects:
        if stix_object["id"] not in placed:
            placed.add(stix_object["id"])
            _place(stix_object, by_id, placed, ordered)
    return ordered


def _place(root: dict, by_id: dict[str, dict], placed: set[str], ordered: list[dict]) -> None:
    """Append `root` after its unplaced dependencies (iteratively: no recursion limit on deep chains)."""
    stack = [(root, iter(references(root)))]
    while stack:
        stix_object, pending = stack[-1]
        for reference in pending:
            dependency = by_id.get(reference)
            if dependency is not None and reference not in placed:
                placed.add(reference)
                stack.append((dependency, iter(references(dependency))))
                break
        else:
            stack.pop()
            ordered.append(stix_object)


def with_dependencies(chunk: Sequence[dict], by_id: dict[str, dict], position: dict[str, int]) -> list[dict]:
    """The objects of `by_id` the chunk references, directly or not, then the chunk: dependencies first when
    the chunk is a slice of a `dependencies_first` order whose positions `position` gives."""
    inside = {stix_object["id"] for stix_object in chunk}
    outside: dict[str, dict] = {}
    pending = [ref for stix_object in chunk for ref in references(stix_object) if ref not in inside]
    while pending:
        reference = pending.pop()
        dependency = by_id.get(reference)
        if dependency is not None and reference not in outside and reference not in inside:
            outside[reference] = dependency
            pending.extend(references(dependency))
    return [*sorted(outside.values(), key=lambda stix_object: position[stix_object["id"]]), *chunk]


def bundle_text(bundle: dict) -> Iterator[str]:
    """The bundle as JSON text, in pieces: its header, then one object per line (compact, UTF-8 as is), so
    that it is written without ever being one string."""
    header = {key: value for key, value in bundle.items() if key != "objects"}
    yield json.dumps(header, ensure_ascii=False)[:-1] + ', "objects": [\n'
    for index, stix_object in enumerate(bundle["objects"]):
        yield ("" if index == 0 else ",\n") + json.dumps(stix_object, ensure_ascii=False)
    yield "\n]}\n"
