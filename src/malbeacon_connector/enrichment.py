"""The enrichment use case: which lookups to make, fetching, parsing and a one-line account."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from .client import MalbeaconClient
from .converter import EnrichedEntity, Enrichment
from .errors import MalbeaconError
from .records import ParsedRecords, parse_records
from .stix_ids import observable_id
from .tlp import marking_id
from .values import STIX_TYPES

# Which Malbeacon endpoints each entity type asks: the enriched value is looked up as a C2.
LOOKUP_PLAN: dict[str, tuple[str, ...]] = {entity_type: ("c2",) for entity_type in STIX_TYPES}


@dataclass
class EnrichmentResult:
    """What the lookups of one entity gave: records, or the failure that stopped them."""

    entity: EnrichedEntity
    parsed: ParsedRecords = field(default_factory=ParsedRecords)
    lookups: list[str] = field(default_factory=list)
    error: MalbeaconError | None = None

    @property
    def found(self) -> bool:
        return self.error is None and bool(self.parsed.records)

    def as_enrichment(self) -> Enrichment:
        """The input of the converter (no records when the lookups failed)."""
        records = self.parsed.records if self.error is None else []
        return Enrichment(self.entity, records, self.lookups)

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
        result.lookups.append(f"c2/{endpoint}/{entity.value}")
        result.parsed.extend(parse_records(rows))
    return result


def entity_for_value(value: str, entity_type: str, tlp: str) -> EnrichedEntity:
    """A STIX observable for a value given on the command line, marked with its TLP."""
    stix_type = STIX_TYPES[entity_type]
    stix_object = {"type": stix_type, "spec_version": "2.1", "id": observable_id(stix_type, value), "value": value}
    if tlp != "TLP:CLEAR":
        stix_object["object_marking_refs"] = [marking_id(tlp)]
    return EnrichedEntity(stix_object, entity_type, value, tlp)
