"""Analyst reports of an enrichment: one row per actor IP or host name, as a plain-text table or as CSV.

The rows come from the records of each value's lookups: an actor's records are gathered into one
row (earliest first seen, latest last seen, every autonomous system, country, C2 panel and tag).
"""

import csv
import io
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from malbeacon_connector.pipeline import LookupOutcome, counted
from malbeacon_connector.text import clean_text
from malbeacon_connector.values import IP_TYPES, AutonomousSystem, Country, url_host

COLUMNS = ("value", "type", "autonomous system", "country", "first seen", "last seen", "C2 panels", "tags")
CSV_COLUMNS = ("enriched value", *COLUMNS)
MAX_CELL_CHARS = 40  # a table cuts wider cells short, ending them with an ellipsis; CSV never does
ELLIPSIS = "…"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would take such a cell for a formula
_TYPE_ORDER = {"IPv4-Addr": 0, "IPv6-Addr": 1, "Domain-Name": 2}


@dataclass(frozen=True)
class ActorRow:
    """One actor IP or host name, as the records of one enriched value describe it."""

    value: str
    entity_type: str
    systems: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    panels: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def cells(self) -> list[str]:
        """The texts of the columns, in the order of COLUMNS (empty when unknown)."""
        return [
            self.value,
            self.entity_type,
            ", ".join(self.systems),
            ", ".join(self.countries),
            iso_time(self.first_seen),
            iso_time(self.last_seen),
            ", ".join(self.panels),
            ", ".join(self.tags),
        ]


@dataclass(frozen=True)
class ValueReport:
    """One enriched value: its actors, or why there are none (not found, or the failure)."""

    value: str
    entity_type: str
    rows: tuple[ActorRow, ...] = ()
    problem: str | None = None

    @property
    def heading(self) -> str:
        """`203.0.113.7 (IPv4-Addr): 5 actors`, or what stood in the way."""
        return f"{self.value} ({self.entity_type}): {self.problem or counted(len(self.rows), 'actor')}"


@dataclass
class _Actor:
    """What the records say about an actor so far."""

    seen: set[datetime] = field(default_factory=set)
    systems: set[AutonomousSystem] = field(default_factory=set)
    countries: set[Country] = field(default_factory=set)
    panels: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)

    def row(self, entity_type: str, value: str) -> ActorRow:
        return ActorRow(
            value,
            entity_type,
            tuple(f"AS{system.number} {system.name}" for system in sorted(self.systems, key=lambda s: s.number)),
            tuple(f"{country.code} {country.name}" for country in sorted(self.countries, key=lambda c: c.code)),
            min(self.seen, default=None),
            max(self.seen, default=None),
            tuple(sorted(self.panels)),
            tuple(sorted(self.tags)),
        )


def iso_time(moment: datetime | None) -> str:
    """ISO 8601 in UTC to the second (`2020-10-22T09:04:40Z`); empty for None."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else ""


def value_reports(outcomes: Sequence[LookupOutcome]) -> list[ValueReport]:
    """A report per enriched value, in the order of the outcomes."""
    return [value_report(outcome) for outcome in outcomes]


def value_report(outcome: LookupOutcome) -> ValueReport:
    """The actors in the records of one value's lookups, one row each, sorted by type then address or name."""
    entity = outcome.entity
    if outcome.error is not None:
        return ValueReport(entity.value, entity.entity_type, problem=f"failed: {outcome.error}")
    if not outcome.parsed.received:
        return ValueReport(entity.value, entity.entity_type, problem="not found in Malbeacon")
    actors: dict[tuple[str, str], _Actor] = {}
    for lookup in outcome.lookups:
        for record in lookup.records:
            keys = [record.actor_ip.key] if record.actor_ip else []
            if record.actor_hostname:
                keys.append(("Domain-Name", record.actor_hostname))
            if lookup.role == "actor" and entity.key not in keys:  # the value is the actor itself
                keys.append(entity.key)
            host = url_host(record.c2_url) if record.c2_url else None
            panel = record.c2_domain or (host[1] if host else None) or (entity.value if lookup.role == "c2" else None)
            for key in keys:
                actor = actors.setdefault(key, _Actor())
                actor.seen.update([record.seen_at] if record.seen_at else [])
                actor.systems.update([record.actor_asn] if record.actor_asn else [])
                actor.countries.update([record.actor_country] if record.actor_country else [])
                actor.panels.update([panel] if panel else [])
                actor.tags.update(record.tags)
    rows = sorted((actor.row(*key) for key, actor in actors.items()), key=_row_order)
    return ValueReport(entity.value, entity.entity_type, tuple(rows))


def _row_order(row: ActorRow) -> tuple[int, int, str]:
    """IPv4 addresses, then IPv6 ones (both in numeric order), then host names (alphabetical)."""
    number = int(ipaddress.ip_address(row.value)) if row.entity_type in IP_TYPES else 0
    return _TYPE_ORDER.get(row.entity_type, len(_TYPE_ORDER)), number, row.value


def render_table(reports: Sequence[ValueReport]) -> str:
    """A heading line per value, then its actors in aligned columns; blank lines between values."""
    return "".join(("\n" if index else "") + _table(report) for index, report in enumerate(reports))


def _table(report: ValueReport) -> str:
    lines = [clean_text(report.heading)]
    if report.rows:
        cells = [[_shortened(clean_text(cell) or "-") for cell in row.cells()] for row in report.rows]
        widths = [max(len(line[column]) for line in [list(COLUMNS), *cells]) for column in range(len(COLUMNS))]
        rule = ["-" * width for width in widths]
        for line in [list(COLUMNS), rule, *cells]:
            lines.append("  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    return "\n".join(lines) + "\n"


def _shortened(cell: str) -> str:
    return cell if len(cell) <= MAX_CELL_CHARS else cell[: MAX_CELL_CHARS - len(ELLIPSIS)] + ELLIPSIS


def render_csv(reports: Sequence[ValueReport]) -> str:
    """A header line, then a row per actor of each value (RFC 4180 quoting, lines ending in CRLF); values
    without actors have no row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for report in reports:
        writer.writerows([neutralised(cell) for cell in (report.value, *row.cells())] for row in report.rows)
    return buffer.getvalue()


def neutralised(cell: str) -> str:
    """The cell as text a spreadsheet shows rather than evaluates: a leading `'` when it would start a formula."""
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell
