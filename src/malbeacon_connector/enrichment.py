"""The enrichment use case: which lookups to make, fetching, parsing and a one-line account."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from .client import MalbeaconClient
from .converter import ConversionOptions, EnrichedEntity, Enrichment, Lookup
from .errors import MalbeaconError
from .records import ParsedRecords, parse_records
from .settings import MalbeaconSettings
from .stix_ids import observable_id
from .tlp import marking_id
from .values import STIX_TYPES


def lookup_plan(settings: MalbeaconSettings) -> dict[str, tuple[str, ...]]:
    """Which Malbeacon endpoints each entity type asks (one API call each)."""
    return {
        "IPv4-Addr": settings.ip_lookups,
        "IPv6-Addr": settings.ip_lookups,
        "Domain-Name": settings.domain_lookups,
        "Url": ("c2",),
        "User-Agent": ("useragent",),
    }


def conversion_options(settings: MalbeaconSettings) -> ConversionOptions:
    """The converter's options from the `malbeacon` settings."""
    return ConversionOptions(
        score=settings.indicator_score_level,
        infrastructure=settings.create_infrastructure,
        autonomous_systems=settings.add_autonomous_systems,
        countries=settings.add_countries,
        labels=settings.add_labels,
        seen_times=settings.add_seen_times,
        user_agents=settings.add_user_agents,
    )


@dataclass
class EnrichmentResult:
    """What the lookups of one entity gave: records, or the failure that stopped them."""

    entity: EnrichedEntity
    parsed: ParsedRecords = field(default_factory=ParsedRecords)
    lookups: list[Lookup] = field(default_factory=list)
    error: MalbeaconError | None = None

    @property
    def found(self) -> bool:
        return self.error is None and bool(self.parsed.records)

    def as_enrichment(self) -> Enrichment:
        """The input of the converter (no lookups when one of them failed)."""
        return Enrichment(self.entity, self.lookups if self.error is None else [])

    def summary(self) -> str:
        """One line: what was asked and what came of it."""
        asked = f"{self.entity.value} ({self.entity.entity_type})"
        if self.error is not None:
            return f"{asked}: failed: {self.error}"
        if not self.parsed.received:
            return f"{asked}: not found in Malbeacon"
        parsed = self.parsed
        line = f"{asked}: {parsed.received} records, {len(parsed.records)} kept"
        if parsed.rows_dropped:
            line += f", {parsed.rows_dropped} dropped"
        ips = {record.actor_ip for record in parsed.records if record.actor_ip is not None}
        hostnames = {record.actor_hostname for record in parsed.records if record.actor_hostname is not None}
        line += f"; {len(ips)} actor IPs, {len(hostnames)} actor host names"
        if parsed.dropped:
            reasons = ", ".join(f"{reason} x{count}" for reason, count in sorted(parsed.dropped.items()))
            line += f"; ignored: {reasons}"
        return line


def enrich(client: MalbeaconClient, entity: EnrichedEntity, endpoints: Sequence[str]) -> EnrichmentResult:
    """Ask Malbeacon every endpoint for the entity's value; stop at the first failure."""
    result = EnrichmentResult(entity)
    for endpoint in endpoints:
        try:
            rows = client.lookup(endpoint, entity.value)
        except MalbeaconError as error:
            result.error = error
            break
        parsed = parse_records(rows)
        result.lookups.append(Lookup(endpoint, parsed.records))
        result.parsed.extend(parsed)
    return result


def entity_for_value(value: str, entity_type: str, tlp: str) -> EnrichedEntity:
    """A STIX observable for a value given on the command line, marked with its TLP."""
    stix_type = STIX_TYPES[entity_type]
    stix_object = {"type": stix_type, "spec_version": "2.1", "id": observable_id(stix_type, value), "value": value}
    if tlp != "TLP:CLEAR":
        stix_object["object_marking_refs"] = [marking_id(tlp)]
    return EnrichedEntity(stix_object, entity_type, value, tlp)
