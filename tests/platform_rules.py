"""What the OpenCTI platform does on import with what a connector sends: the tests' oracle.

Written from the platform's source (see the project's platform notes), independently of the
connector's own code, so that a wrong rule in the connector cannot also pass here.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from pycti import ExternalReference

# built-in decay rules: the lifetime of an indicator, by its main observable type
DECAY_LIFETIME_DAYS = {"IPv4-Addr": 47, "IPv6-Addr": 47, "Url": 47, "Domain-Name": 300}
DEFAULT_DECAY_LIFETIME_DAYS = 365

OBSERVABLE_TYPES = {
    "ipv4-addr": "IPv4-Addr",
    "ipv6-addr": "IPv6-Addr",
    "domain-name": "Domain-Name",
    "url": "Url",
    "user-agent": "User-Agent",
    "autonomous-system": "Autonomous-System",
}
_IPS = {"ipv4-addr", "ipv6-addr"}
# (relationship type, source STIX types, target STIX types) the platform's mapping allows, as used here
ALLOWED_RELATIONSHIPS: list[tuple[str, set[str], set[str]]] = [
    ("resolves-to", {"domain-name"}, _IPS | {"domain-name"}),
    ("based-on", {"indicator"}, set(OBSERVABLE_TYPES)),
    ("indicates", {"indicator"}, {"infrastructure"}),  # also attack patterns, malware, threat actors...: not used here
    ("communicates-with", {"infrastructure"}, _IPS | {"domain-name", "url", "infrastructure"}),
    ("consists-of", {"infrastructure"}, set(OBSERVABLE_TYPES) | {"infrastructure"}),
    ("belongs-to", _IPS, {"autonomous-system"}),
    ("located-at", _IPS, {"location"}),  # a Country
]


def parse_time(text: str) -> datetime:
    """A STIX timestamp as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def stored_valid_until(indicator: dict[str, Any]) -> datetime:
    """The indicator's end as stored: the one given, else valid_from + its decay rule's lifetime."""
    if indicator.get("valid_until"):
        return parse_time(indicator["valid_until"])
    main_type = indicator.get("x_opencti_main_observable_type", "")
    lifetime = DECAY_LIFETIME_DAYS.get(main_type, DEFAULT_DECAY_LIFETIME_DAYS)
    return parse_time(indicator["valid_from"]) + timedelta(days=lifetime)


def revoked_on_arrival(indicator: dict[str, Any], now: datetime) -> bool:
    """The platform stores an indicator revoked when its end is already past."""
    return stored_valid_until(indicator) <= now


def external_reference_id(reference: dict[str, Any]) -> str | None:
    """The platform's identity of an external reference (its URL, else its source name and external id)."""
    return ExternalReference.generate_id(
        reference.get("url"), reference.get("source_name"), reference.get("external_id")
    )


def relationship_refusal(relationship_type: str, source_type: str, target_type: str) -> str | None:
    """The platform's error for a relationship outside its mapping (`related-to` is always allowed), or None."""
    if relationship_type == "related-to":
        return None
    for allowed_type, sources, targets in ALLOWED_RELATIONSHIPS:
        if allowed_type == relationship_type and source_type in sources and target_type in targets:
            return None
    return f"The relationship type {relationship_type} is not allowed between {source_type} and {target_type}"
