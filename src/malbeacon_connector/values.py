"""Validation and normalisation of the values Malbeacon works with: IPs, host names, URLs, ASNs, countries."""

import ipaddress
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from urllib.parse import urlsplit

import idna

from malbeacon_connector.memo import short_memo

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
_ASN = re.compile(r"AS([0-9]{1,10})\b\s*(.*)", re.IGNORECASE | re.DOTALL | re.ASCII)
_MAX_ASN = 2**32 - 1
# RFC 3986: the characters a URI may hold (percent signs are checked apart)
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]*\Z")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Addresses that would match internal traffic: no indicator for them
INTERNAL_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(network), reason)
    for network, reason in (
        ("0.0.0.0/8", "an unspecified address"),
        ("10.0.0.0/8", "a private address (RFC 1918)"),
        ("100.64.0.0/10", "a shared address (CGNAT, RFC 6598)"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address (RFC 1918)"),
        ("192.168.0.0/16", "a private address (RFC 1918)"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("fc00::/7", "a unique local address (IPv6 ULA)"),
        ("fe80::/10", "a link-local address"),
        ("ff00::/8", "a multicast address"),
    )
)


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


@short_memo
def normalise_ip(text: str) -> tuple[str, str] | None:
    """`(entity type, canonical address)` for an IPv4 or IPv6 address, None when it is not one.

    An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is the IPv4 address it maps.
    """
    text = text.strip()
    if "%" in text:  # scoped (link-local zone) addresses are not observables
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return "IPv4-Addr" if address.version == 4 else "IPv6-Addr", str(address)


@short_memo
def internal_address(address: str) -> str | None:
    """Why an address would match internal traffic (private, loopback, link-local, CGNAT, multicast,
    unspecified, broadcast, IPv6 ULA), None for others."""
    ip = ipaddress.ip_address(address)
    return next((reason for network, reason in INTERNAL_NETWORKS if ip in network), None)


@short_memo
def normalise_hostname(text: str) -> str | None:
    """The lower-cased RFC 1123 host name without trailing dot, None when the text is not one.

    Single-label names (`localhost`), labels with `_`, names whose last label is numeric
    (IP-like), non-ASCII text and labels that are not valid IDNA (`xn--zz`, `ab--cd`) are rejected.
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
    if "--" in name and not all(_valid_idna(label) for label in labels if label[2:4] == "--"):
        return None
    return name


def _valid_idna(label: str) -> bool:
    """An A-label that decodes to a valid IDNA name (hyphens at positions 3-4 mean one)."""
    try:
        idna.decode(label)
    except (idna.IDNAError, UnicodeError, ValueError):
        return False
    return True


@short_memo
def normalise_url(text: str) -> str | None:
    """The URL without surrounding blanks, None unless it is an RFC 3986 URI (ASCII, no spaces or control
    characters, valid percent escapes) with a scheme and a host."""
    url = text.strip()
    if not url or len(url) > _MAX_TEXT_LENGTH or not _URI.match(url) or _PERCENT.search(url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    return url if parts.scheme and host else None


@short_memo
def url_host(url: str) -> tuple[str, str] | None:
    """`(entity type, host)` of a URL whose host is an IP address or a valid host name."""
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
    return ("Domain-Name", name) if name is not None else None


@short_memo
def normalise_user_agent(text: str) -> str | None:
    """A user agent string without surrounding blanks; None when empty, too long or with control characters."""
    agent = text.strip()
    if not agent or len(agent) > _MAX_TEXT_LENGTH or not agent.isprintable():
        return None
    return agent


@short_memo
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


@short_memo
def parse_country(code: str) -> Country | None:
    """The country of an ISO 3166-1 alpha-2 code (ASCII, any case); None for anything else."""
    code = code.strip().upper() if code.isascii() else ""
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
    """`(entity type, normalised value)` for a value to enrich, its type inferred when not given.

    Inference tries an IP address, a domain name, then a URL; a user agent must be named.
    Raises ValueError with a message naming what was expected.
    """
    if entity_type is not None and entity_type not in STIX_TYPES:
        raise ValueError(f"unsupported type {entity_type!r}; allowed: {', '.join(STIX_TYPES)}")
    ip = normalise_ip(value)
    if ip is not None and entity_type in (None, ip[0]):
        return ip
    for candidate in ("Domain-Name", "Url") if entity_type is None else (entity_type,):
        normalise = _NORMALISERS.get(candidate)
        normalised = normalise(value) if normalise is not None else None
        if normalised is not None:
            return candidate, normalised
    expected = _DESCRIPTIONS[entity_type] if entity_type else "an IP address, a domain name or a URL"
    raise ValueError(f"{value!r} is not {expected}")
