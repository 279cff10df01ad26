"""Deterministic STIX ids, computed the way the stix2 library and pycti compute them.

The same input always gives the same id, so OpenCTI upserts instead of duplicating.
Equality with stix2/pycti is proven by the tests; computing ids here keeps the
enrichment core free of the (slow) object-building libraries.
"""

import json
import uuid

_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")


def _canonical(data: dict[str, str | int]) -> str:
    # RFC 8785 (JCS) for a flat object of strings is exactly this serialisation.
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _make_id(stix_type: str, data: dict[str, str | int]) -> str:
    return f"{stix_type}--{uuid.uuid5(_NAMESPACE, _canonical(data))}"


def observable_id(stix_type: str, value: str) -> str:
    """Id of an observable whose identity is its `value` (ipv4-addr, domain-name, url...)."""
    return _make_id(stix_type, {"value": value})


def identity_id(name: str, identity_class: str) -> str:
    """Id of an identity, as pycti's `Identity.generate_id`."""
    return _make_id("identity", {"name": name.lower().strip(), "identity_class": identity_class.lower()})


def indicator_id(pattern: str) -> str:
    """Id of an indicator, as pycti's `Indicator.generate_id`."""
    return _make_id("indicator", {"pattern": pattern.strip()})


def relationship_id(relationship_type: str, source_ref: str, target_ref: str) -> str:
    """Id of a relationship without times, as pycti's `StixCoreRelationship.generate_id`."""
    return _make_id(
        "relationship",
        {"relationship_type": relationship_type, "source_ref": source_ref, "target_ref": target_ref},
    )


def autonomous_system_id(number: int) -> str:
    """Id of an autonomous-system observable (its identity is its number)."""
    return _make_id("autonomous-system", {"number": number})


def infrastructure_id(name: str) -> str:
    """Id of an infrastructure, as pycti's `Infrastructure.generate_id`."""
    return _make_id("infrastructure", {"name": name.lower().strip()})


def location_id(name: str, location_type: str) -> str:
    """Id of a (non-position) location, as pycti's `Location.generate_id`."""
    return _make_id("location", {"name": name.lower().strip(), "x_opencti_location_type": location_type})
