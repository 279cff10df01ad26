"""Malbeacon beacon records: one normalised row per beacon, bad fields and rows counted, never fatal."""

import html
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from malbeacon_connector.gc_pause import gc_paused
from malbeacon_connector.memo import short_memo
from malbeacon_connector.text import clean_text
from malbeacon_connector.values import (
    AutonomousSystem,
    Country,
    normalise_hostname,
    normalise_ip,
    normalise_url,
    normalise_user_agent,
    parse_asn,
    parse_country,
)

_MISSING = {"", "NA", "N/A", "NULL", "NONE"}
MAX_FIELD_CHARS = 2048  # longer fields are dropped: no record is worth megabytes of text
MAX_TAGS = 20  # per record; further tags are ignored and counted
MAX_TAG_CHARS = 64
EARLIEST_BEACON = datetime(2015, 1, 1, tzinfo=UTC)  # before Malbeacon existed: not a real beacon time
FUTURE_TOLERANCE = timedelta(days=1)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class IpAddress:
    """A validated IP address (an actor's, or a C2 server's) and its OpenCTI entity type."""

    entity_type: str  # IPv4-Addr or IPv6-Addr
    value: str

    @property
    def key(self) -> tuple[str, str]:
        """`(entity type, value)`, as the converter keys observables."""
        return self.entity_type, self.value


@dataclass(frozen=True, slots=True)
class BeaconRecord:
    """One beacon: somebody (the actor) logged into a C2 panel at a time."""

    seen_at: datetime | None = None
    actor_ip: IpAddress | None = None
    actor_hostname: str | None = None
    actor_asn: AutonomousSystem | None = None
    actor_country: Country | None = None
    actor_city: str | None = None
    actor_region: str | None = None
    actor_timezone: str | None = None
    actor_location: str | None = None
    c2_url: str | None = None
    c2_domain: str | None = None
    c2_domain_resolved: IpAddress | None = None
    c2_hostname: str | None = None
    c2_asn: AutonomousSystem | None = None
    c2_country: Country | None = None
    c2_city: str | None = None
    c2_region: str | None = None
    c2_timezone: str | None = None
    c2_location: str | None = None
    cookie_id: str | None = None
    user_agent: str | None = None
    tags: tuple[str, ...] = ()


@dataclass
class ParsedRecords:
    """The records kept from one response and what was dropped, by reason."""

    records: list[BeaconRecord] = field(default_factory=list)
    received: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    @property
    def rows_dropped(self) -> int:
        """How many rows were discarded whole (as opposed to single fields)."""
        return self.received - len(self.records)

    def extend(self, other: "ParsedRecords") -> None:
        """Add another response's records and counts to these."""
        self.records.extend(other.records)
        self.received += other.received
        self.dropped.update(other.dropped)


class _InvalidField(Exception):
    """A field value that is present but unusable; the message is the reason."""


def _text(value: object) -> str | None:
    """A present value as stripped text, None for Malbeacon's spellings of "missing"."""
    if value.__class__ is str:
        text = value.strip()  # type: ignore[attr-defined]
        return None if len(text) < 5 and text.upper() in _MISSING else text
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _InvalidField("not a string")
    try:
        text = str(value).strip()
    except ValueError:  # an integer too long to print
        raise _InvalidField("not a string") from None
    return None if text.upper() in _MISSING else text


def _required(normalise: Callable[[str], T | None], reason: str) -> Callable[[str], T]:
    """A converter that raises `_InvalidField(reason)` where `normalise` finds nothing valid."""

    def convert(text: str) -> T:
        value = normalise(text)
        if value is None:
            raise _InvalidField(reason)
        return value

    return convert


@short_memo
def _actor_ip(text: str) -> IpAddress | None:
    parsed = normalise_ip(text)
    return IpAddress(*parsed) if parsed is not None else None


@short_memo
def _unescaped_url(text: str) -> str | None:
    return normalise_url(html.unescape(text))


def _timestamp(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
        # Malbeacon writes UTC without a zone
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _InvalidField("not a date and time") from None
    if not EARLIEST_BEACON <= moment <= datetime.now(UTC) + FUTURE_TOLERANCE:
        raise _InvalidField(f"before {EARLIEST_BEACON.year} or in the future")
    return moment


@short_memo
def _tags(text: str) -> tuple[str, ...]:
    tags = (tag.strip().lower() for tag in text.split(","))
    kept = (tag for tag in tags if tag and len(tag) <= MAX_TAG_CHARS and tag.upper() not in _MISSING)
    return tuple(dict.fromkeys(kept))


_ip = _required(_actor_ip, "not an IP address")
_hostname = _required(normalise_hostname, "not a valid host name")
_c2_url = _required(_unescaped_url, "not a URL")
_asn = _required(parse_asn, "no AS number")
_country = _required(parse_country, "not a country code")
_user_agent = _required(normalise_user_agent, "not a user agent")


# API field -> (record attribute, converter of the present text)
_FIELDS = {
    "tstamp": ("seen_at", _timestamp),
    "actorip": ("actor_ip", _ip),
    "actorhostname": ("actor_hostname", _hostname),
    "actorasnorg": ("actor_asn", _asn),
    "actorcountrycode": ("actor_country", _country),
    "actorcity": ("actor_city", str),
    "actorregion": ("actor_region", str),
    "actortimezone": ("actor_timezone", str),
    "actorloc": ("actor_location", str),
    "c2": ("c2_url", _c2_url),
    "c2domain": ("c2_domain", _hostname),
    "c2domainresolved": ("c2_domain_resolved", _ip),
    "c2hostname": ("c2_hostname", _hostname),
    "c2asnorg": ("c2_asn", _asn),
    "c2countrycode": ("c2_country", _country),
    "c2city": ("c2_city", str),
    "c2region": ("c2_region", str),
    "c2timezone": ("c2_timezone", str),
    "c2loc": ("c2_location", str),
    "cookie_id": ("cookie_id", str),
    "useragent": ("user_agent", _user_agent),
    "tags": ("tags", _tags),
}


def _bounded(api_field: str, text: str, dropped: Counter[str]) -> str:
    """The text within the length bound; free text without control characters (cleaning is counted).

    Values that identify something (addresses, names, URLs, user agents, times) are not cleaned,
    which would turn them into other values: their validation refuses control characters.
    """
    if len(text) > MAX_FIELD_CHARS:
        raise _InvalidField(f"longer than {MAX_FIELD_CHARS} characters")
    if api_field in _FREE_TEXT and not text.isprintable():
        cleaned = clean_text(text).strip()
        if cleaned != text:
            dropped[f"{api_field}: control characters removed"] += 1
        return cleaned
    return text


_FREE_TEXT = {api_field for api_field, (_, convert) in _FIELDS.items() if convert in (str, _tags, _asn)}


def parse_record(row: dict, dropped: Counter[str]) -> BeaconRecord:
    """Normalise one API row; each invalid field is left out and counted in `dropped`."""
    values: dict[str, object] = {}
    for api_field, raw in row.items():
        spec = _FIELDS.get(api_field)
        if spec is None:
            continue
        try:
            text = _text(raw)
            if text is not None:
                text = _bounded(api_field, text, dropped)
            if text:
                values[spec[0]] = spec[1](text)
        except _InvalidField as reason:
            dropped[f"{api_field}: {reason}"] += 1
    tags = values.get("tags")
    if isinstance(tags, tuple) and len(tags) > MAX_TAGS:
        values["tags"] = tags[:MAX_TAGS]
        dropped[f"tags: more than {MAX_TAGS}, the rest ignored"] += 1
    return BeaconRecord(**values)


_EMPTY = BeaconRecord()


def parse_records(rows: Iterable[object]) -> ParsedRecords:
    """Normalise every row of a response; a row that is not a JSON object, or holds no usable field, is
    dropped and counted."""
    parsed = ParsedRecords()
    with gc_paused():
        _parse_into(parsed, rows)
    return parsed


def _parse_into(parsed: ParsedRecords, rows: Iterable[object]) -> None:
    for row in rows:
        parsed.received += 1
        if not isinstance(row, dict):
            parsed.dropped["row: not a JSON object"] += 1
            continue
        record = parse_record(row, parsed.dropped)
        if record == _EMPTY:
            parsed.dropped["row: no usable field"] += 1
        else:
            parsed.records.append(record)
