"""Deterministic STIX ids, computed the way the stix2 library and pycti compute them.

The same input always gives the same id, so OpenCTI upserts instead of duplicating.
An id is a UUIDv5 (OpenCTI's namespace) of the RFC 8785 canonical JSON of the
id-contributing properties; for the flat objects of strings and integers used here that
is a sorted, compact JSON object, which this module writes directly (faster than a
general canonicaliser). Equality with stix2/pycti is proven by the tests.
"""

from hashlib import sha1
from json.encoder import encode_basestring
from uuid import UUID

_NAMESPACE = UUID("00abedb4-aa42-466c-9c01-fed23315a9b7").bytes


def _uuid5(name: str) -> str:
    digest = bytearray(sha1(_NAMESPACE + name.encode("utf-8"), usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _canonical(data: dict[str, str | int]) -> str:
    """RFC 8785 JSON of a flat object of strings and integers: sorted keys, no blanks, minimal escapes."""
    members = (
        f"{encode_basestring(key)}:{value if isinstance(value, int) else encode_basestring(value)}"
        for key, value in sorted(data.items())
    )
    return "{" + ",".join(members) + "}"


def _make_id(stix_type: str, data: dict[str, str | int]) -> str:
    return f"{stix_type}--{_uuid5(_canonical(data))}"


def observable_id(stix_type: str, value: str) -> str:
    """Id of an observable whose identity is its `value` (ipv4-addr, domain-name, url...)."""
    return stix_type + "--" + _uuid5('{"value":' + encode_basestring(value) + "}")


def identity_id(name: str, identity_class: str) -> str:
    """Id of an identity, as pycti's `Identity.generate_id`."""
    return _make_id("identity", {"name": name.lower().strip(), "identity_class": identity_class.lower()})


def indicator_id(pattern: str) -> str:
    """Id of an indicator, as pycti's `Indicator.generate_id`."""
    return "indicator--" + _uuid5('{"pattern":' + encode_basestring(pattern.strip()) + "}")


def relationship_id(relationship_type: str, source_ref: str, target_ref: str) -> str:
    """Id of a relationship without times, as pycti's `StixCoreRelationship.generate_id`."""
    name = (
        f'{{"relationship_type":{encode_basestring(relationship_type)},'
        f'"source_ref":{encode_basestring(source_ref)},"target_ref":{encode_basestring(target_ref)}}}'
    )
    return f"relationship--{_uuid5(name)}"


def autonomous_system_id(number: int) -> str:
    """Id of an autonomous-system observable (its identity is its number)."""
    return _make_id("autonomous-system", {"number": number})


def infrastructure_id(name: str) -> str:
    """Id of an infrastructure, as pycti's `Infrastructure.generate_id`."""
    return _make_id("infrastructure", {"name": name.lower().strip()})


def location_id(name: str, location_type: str) -> str:
    """Id of a (non-position) location, as pycti's `Location.generate_id`."""
    return _make_id("location", {"name": name.lower().strip(), "x_opencti_location_type": location_type})
