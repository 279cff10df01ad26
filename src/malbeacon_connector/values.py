"""Validation and normalisation of the values Malbeacon works with: IPs, host names, URLs, ASNs, countries."""

import ipaddress
import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from urllib.parse import urlsplit

# Entity types of OpenCTI and the STIX observable type each one maps to.
STIX_TYPES: dict[str, str] = {
    "IPv4-Addr": "ipv4-addr",
    "IPv6-Addr": "ipv6-addr",
    "Domain-Name": "domain-name",
    "Url": "url",
    "User-Agent": "user-agent",
}
IP_TYPES = ("IPv4-Addr", "IPv6-Addr")
_MAX_TEXT_LENGTH = 2048
_MEMO = 65536  # values repeat across a response's records: each distinct one is checked once
_ASN = re.compile(r"AS(\d{1,10})\b\s*(.*)", re.IGNORECASE | re.DOTALL)
_MAX_ASN = 2**32 - 1


@dataclass(frozen=True, slots=True)
class AutonomousSystem:
    """An autonomous system number and the organisation's name."""

    number: int
    name: str


@dataclass(frozen=True, slots=True)
class Country:
    """An ISO 3166-1 country: its alpha-2 code and English name."""

    code: str
    name: str


_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_MAX_HOSTNAME_LENGTH = 253


@lru_cache(maxsize=_MEMO)
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


@lru_cache(maxsize=_MEMO)
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


@lru_cache(maxsize=_MEMO)
def normalise_url(text: str) -> str | None:
    """The URL without surrounding blanks, None unless it has a scheme and a host and no control characters."""
    url = text.strip()
    if not url or len(url) > _MAX_TEXT_LENGTH or any(ord(char) < 32 or ord(char) == 127 for char in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    return url if parts.scheme and host else None


@lru_cache(maxsize=_MEMO)
def url_host(url: str) -> tuple[str, str] | None:
    """`(host, entity type)` of a URL whose host is an IP address or a valid host name."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    ip = normalise_ip(host)
    if ip is not None:
        return ip
    name = normalise_hostname(host)
    return (name, "Domain-Name") if name is not None else None


@lru_cache(maxsize=_MEMO)
def normalise_user_agent(text: str) -> str | None:
    """A user agent string without surrounding blanks; None when empty, too long or with control characters."""
    agent = text.strip()
    if not agent or len(agent) > _MAX_TEXT_LENGTH or any(ord(char) < 32 for char in agent):
        return None
    return agent


@lru_cache(maxsize=_MEMO)
def parse_asn(text: str) -> AutonomousSystem | None:
    """`AS64500 Example ISP` as an autonomous system; None when it names no valid AS number."""
    match = _ASN.fullmatch(text.strip())
    if match is None or not 0 < int(match.group(1)) <= _MAX_ASN:
        return None
    number = int(match.group(1))
    return AutonomousSystem(number, " ".join(match.group(2).split()) or f"AS{number}")


@cache
def _countries() -> dict[str, str]:
    return json.loads(resources.files(__package__).joinpath("data/countries.json").read_text("utf-8"))


@lru_cache(maxsize=_MEMO)
def parse_country(code: str) -> Country | None:
    """The country of an ISO 3166-1 alpha-2 code (any case); None for anything else."""
    code = code.strip().upper()
    name = _countries().get(code) if len(code) == 2 else None
    return Country(code, name) if name else None


_NORMALISERS = {
    "Domain-Name": normalise_hostname,
    "Url": normalise_url,
    "User-Agent": normalise_user_agent,
}
_DESCRIPTIONS = {
    "IPv4-Addr": "an IPv4 address",
    "IPv6-Addr": "an IPv6 address",
    "Domain-Name": "a domain name",
    "Url": "a URL",
    "User-Agent": "a user agent",
}


def normalise_value(value: str, entity_type: str | None = None) -> tuple[str, str]:
    """`(normalised value, entity type)` for a value to enrich, its type inferred when not given.

    Inference tries an IP address, a domain name, then a URL; a user agent must be named.
    Raises ValueError with a message naming what was expected.
    """
    if entity_type is not None and entity_type not in STIX_TYPES:
        raise ValueError(f"unsupported type {entity_type!r}; allowed: {', '.join(STIX_TYPES)}")
    ip = normalise_ip(value)
    if ip is not None and entity_type in (None, ip[1]):
        return ip
    for candidate in ("Domain-Name", "Url") if entity_type is None else (entity_type,):
        normalise = _NORMALISERS.get(candidate)
        normalised = normalise(value) if normalise is not None else None
        if normalised is not None:
            return normalised, candidate
    expected = _DESCRIPTIONS[entity_type] if entity_type else "an IP address, a domain name or a URL"
    raise ValueError(f"{value!r} is not {expected}")
