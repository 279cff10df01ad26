"""Indicators in the fake platform: what the platform reads from a pattern, and its STIX export of an indicator.

Written from the platform's source (`modules/indicator`: the observable values it reads from a STIX
pattern, `x_opencti_observable_values`; its STIX 2.1 converter, which writes them in the OpenCTI
extension as `observable_values` beside `main_observable_type`, `score` and `detection`), independently
of the connector's code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stix2patterns.v21.pattern import Pattern

OCTI_EXT = "extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba"
INDICATOR_PARENT_TYPES = ["Basic-Object", "Stix-Object", "Stix-Core-Object", "Stix-Domain-Object"]
_TYPE_SPELLINGS = {"Ipv4-Addr": "IPv4-Addr", "Ipv6-Addr": "IPv6-Addr", "File": "StixFile"}


def entity_type_of(stix_type: str) -> str:
    """The OpenCTI type of a pattern's object type, spelt as the platform does (`ipv4-addr` -> `IPv4-Addr`)."""
    pascalized = "-".join(part[:1].upper() + part[1:] for part in stix_type.split("-"))
    return _TYPE_SPELLINGS.get(pascalized, pascalized)


_COMPONENTS = {"value", "hashes", "src_port", "dst_port", "number"}  # id-contributing properties read here


def pattern_observable_values(pattern: str, *, api_shape: bool = True) -> list[dict[str, Any]]:
    """The observable values the platform reads from a STIX pattern: one `{type, <property>: literal}` per
    equality on a property contributing to the observable's id (`value`, a file's `hashes`, ...), the literal
    without its quotes; none from a pattern it cannot parse. In the API shape (`x_opencti_observable_values`,
    as pycti asks for them) each has `type`, `value` and `hashes` (`[{algorithm, hash}]`), null when absent;
    in the STIX export only the properties read (hashes as `{algorithm: hash}`)."""
    try:
        comparisons = Pattern(pattern).inspect().comparisons
    except Exception:
        return []
    values: list[dict[str, Any]] = []
    for stix_type, tests in comparisons.items():
        for path, operator, literal in tests:
            if operator != "=" or not path or path[0] not in _COMPONENTS:
                continue
            text = literal.replace("'", "")
            entry: dict[str, Any] = {"type": entity_type_of(stix_type)}
            if path[0] == "hashes" and len(path) == 2:
                algorithm = str(path[1])
                entry["hashes"] = [{"algorithm": algorithm, "hash": text}] if api_shape else {algorithm: text}
            elif len(path) == 1:
                entry[path[0]] = text
            else:
                continue
            values.append(entry)
    if api_shape:  # the fields pycti asks for: type, value, hashes (null when absent)
        return [{"type": v["type"], "value": v.get("value"), "hashes": v.get("hashes")} for v in values]
    return values


def stix_indicator(entity: Mapping[str, Any], octi_extension: Mapping[str, Any]) -> dict[str, Any]:
    """An indicator (API shape) as the platform's STIX 2.1 converter writes it; `octi_extension` holds the
    OpenCTI extension's fields every entity has."""
    stix: dict[str, Any] = {
        "id": entity["standard_id"],
        "spec_version": "2.1",
        "type": "indicator",
        "created": entity["created"],
        "modified": entity["modified"],
        "revoked": entity["revoked"],
        "confidence": entity["confidence"],
        "name": entity["name"],
        "pattern": entity["pattern"],
        "pattern_type": entity["pattern_type"],
        "valid_from": entity["valid_from"],
    }
    if entity["valid_until"]:
        stix["valid_until"] = entity["valid_until"]
    if entity["objectLabel"]:
        stix["labels"] = [label["value"] for label in entity["objectLabel"]]
    if entity["objectMarking"]:
        stix["object_marking_refs"] = [marking["standard_id"] for marking in entity["objectMarking"]]
    if entity["createdBy"]:
        stix["created_by_ref"] = entity["createdBy"]["standard_id"]
    octi = {
        **octi_extension,
        "detection": entity["x_opencti_detection"],
        "score": entity["x_opencti_score"],
        "main_observable_type": entity["x_opencti_main_observable_type"],
    }
    values = pattern_observable_values(entity["pattern"], api_shape=False)  # the converter reads the pattern again
    if values:
        octi["observable_values"] = values
    stix["extensions"] = {OCTI_EXT: octi}
    return stix
