"""Checks every bundle the tests produce must pass."""

from collections.abc import Iterator
from typing import Any

from stix2patterns.validator import run_validator
from stix2validator import ValidationOptions, validate_instance

from malbeacon_connector.stix.bundle import make_bundle, merge_objects
from malbeacon_connector.tlp import MARKING_DEFINITIONS

_OPTIONS = ValidationOptions(version="2.1")


def _refs(value: Any, key: str = "") -> Iterator[str]:
    """Every `*_ref` / `*_refs` value inside an object, at any depth."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _refs(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item, key)
    elif isinstance(value, str) and (key.endswith("_ref") or key.endswith("_refs")):
        yield value


def assert_valid_bundle(bundle: dict) -> None:
    """Valid for stix2-validator, valid patterns, ids unique, every reference inside the bundle."""
    result = validate_instance(bundle, _OPTIONS)
    assert result.is_valid, [str(error) for error in result.errors]
    ids = [stix_object["id"] for stix_object in bundle["objects"]]
    assert len(ids) == len(set(ids)), "duplicate ids in the bundle"
    known = set(ids)
    for stix_object in bundle["objects"]:
        if stix_object["type"] == "indicator":
            assert run_validator(stix_object["pattern"]) == [], stix_object["pattern"]
        missing = [ref for ref in _refs(stix_object) if ref not in known]
        assert not missing, f"{stix_object['id']} refers to objects outside the bundle: {missing}"
        assert "confidence" not in stix_object


def objects_of(bundle_or_objects: dict | list[dict], stix_type: str) -> list[dict]:
    """The objects of one STIX type."""
    objects = bundle_or_objects["objects"] if isinstance(bundle_or_objects, dict) else bundle_or_objects
    return [stix_object for stix_object in objects if stix_object["type"] == stix_type]


def full_bundle(objects: list[dict], entity_object: dict) -> dict:
    """Converted objects with the enriched entity and its marking definitions, as one bundle."""
    markings = [
        definition
        for definition in MARKING_DEFINITIONS.values()
        if definition["id"] in entity_object.get("object_marking_refs", [])
    ]
    return make_bundle(merge_objects([*markings, entity_object], objects))
