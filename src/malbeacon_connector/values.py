"""Validation and normalisation of the values Malbeacon works with: IP addresses and host names."""

import ipaddress
import re

# Entity types of OpenCTI and the STIX observable type each one maps to.
STIX_TYPES: dict[str, str] = {
    "IPv4-Addr": "ipv4-addr",
    "IPv6-Addr": "ipv6-addr",
    "Domain-Name": "domain-name",
}

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_MAX_HOSTNAME_LENGTH = 253


def normalise_ip(text: str) -> tuple[str, str] | None:
    """`(canonical address, entity type)` for an IPv4 or IPv6 address, None when it is not one."""
    text = text.strip()
    if "%" in text:  # scoped (link-local zone) addresses are not observables
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return str(address), "IPv4-Addr" if address.version == 4 else "IPv6-Addr"


def normalise_hostname(text: str) -> str | None:
    """The lower-cased RFC 1123 host name without trailing dot, None when the text is not one.

    Single-label names (`localhost`), labels with `_`, names whose last label is numeric
    (IP-like) and non-ASCII text are rejected.
    """
    name = text.strip()
    if not name.isascii():  # checked first: some non-ASCII letters lower-case to ASCII ones
        return None
    name = name.lower().removesuffix(".")
    if len(name) > _MAX_HOSTNAME_LENGTH:
        return None
    labels = name.split(".")
    if len(labels) < 2 or labels[-1].isdigit():
        return None
    if not all(_LABEL.match(label) for label in labels):
        return None
    return name


def normalise_value(value: str, entity_type: str | None = None) -> tuple[str, str]:
    """`(normalised value, entity type)` for a value to enrich, its type inferred when not given.

    Raises ValueError with a message naming what was expected.
    """
    if entity_type is not None and entity_type not in STIX_TYPES:
        raise ValueError(f"unsupported type {entity_type!r}; allowed: {', '.join(STIX_TYPES)}")
    ip = normalise_ip(value)
    if ip is not None and entity_type in (None, ip[1]):
        return ip
    if entity_type in (None, "Domain-Name"):
        hostname = normalise_hostname(value)
        if hostname is not None:
            return hostname, "Domain-Name"
    expected = entity_type or "an IPv4 address, an IPv6 address or a domain name"
    raise ValueError(f"{value!r} is not {expected}")
