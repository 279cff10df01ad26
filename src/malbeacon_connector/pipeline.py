"""The enrichment use case: which lookups to make, fetching, parsing and a one-line account."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from malbeacon_connector.malbeacon.client import MalbeaconClient
from malbeacon_connector.malbeacon.endpoints import endpoints_for
from malbeacon_connector.malbeacon.errors import MalbeaconError
from malbeacon_connector.malbeacon.records import ParsedRecords, parse_records
from malbeacon_connector.settings import MalbeaconSettings
from malbeacon_connector.stix.convert import convert
from malbeacon_connector.stix.ids import observable_id
from malbeacon_connector.stix.models import ConversionOptions, EnrichedEntity, Findings, Lookup
from malbeacon_connector.tlp import marking_id
from malbeacon_connector.values import STIX_TYPES


def lookup_plan(settings: MalbeaconSettings) -> dict[str, tuple[str, ...]]:
    """Which Malbeacon endpoints each entity type asks (one API call each): those configured for IP
    addresses and domain names, the only one for the other types."""
    configured = {"IPv4-Addr": settings.ip_lookups, "IPv6-Addr": settings.ip_lookups}
    configured["Domain-Name"] = settings.domain_lookups
    return {entity_type: configured.get(entity_type, endpoints_for(entity_type)) for entity_type in STIX_TYPES}


def conversion_options(settings: MalbeaconSettings) -> ConversionOptions:
    """The converter's options from the `malbeacon` settings."""
    return ConversionOptions(
        score=settings.indicator_score_level,
        indicators=settings.create_indicators,
        indicator_valid_from=settings.indicator_valid_from,
        infrastructure=settings.create_infrastructure,
        autonomous_systems=settings.add_autonomous_systems,
        countries=settings.add_countries,
        labels=settings.add_labels,
        seen_times=settings.add_seen_times,
        user_agents=settings.add_user_agents,
    )


@dataclass
class LookupOutcome:
    """What the lookups of one entity gave: records, or the failure that stopped them."""

    entity: EnrichedEntity
    parsed: ParsedRecords = field(default_factory=ParsedRecords)
    lookups: list[Lookup] = field(default_factory=list)
    error: MalbeaconError | None = None
    api_calls: int = 0  # HTTP requests sent to Malbeacon, retries included (what the quota counts)
    asked: int = 0  # lookups sent to Malbeacon (not answered by the cache)
    cached: int = 0  # lookups answered by the cache
    left_out: int = 0  # older records beyond the maximum kept per enrichment
    max_records: int = 0

    @property
    def found(self) -> bool:
        return self.error is None and bool(self.parsed.records)

    def as_findings(self) -> Findings:
        """The input of the converter (no lookups when one of them failed)."""
        return Findings(self.entity, self.lookups if self.error is None else [])

    def summary(self, objects_sent: int | None = None) -> str:
        """One line: what was asked, what came of it (and how many objects were sent), what it cost."""
        asked = f"{self.entity.value} ({self.entity.entity_type})"
        if self.error is not None:
            return f"{asked}: failed: {self.error}{self._cost()}"
        if not self.parsed.received:
            return f"{asked}: not found in Malbeacon{self._cost()}"
        parsed = self.parsed
        kept = [record for lookup in self.lookups for record in lookup.records]
        line = f"{asked}: {counted(parsed.received, 'record')}, {len(kept)} kept"
        if parsed.rows_dropped:
            line += f", {parsed.rows_dropped} dropped"
        if self.left_out:
            line += f", {self.left_out} older ones left out (MALBEACON_MAX_RECORDS={self.max_records})"
        ips = {record.actor_ip for record in kept if record.actor_ip is not None}
        hostnames = {record.actor_hostname for record in kept if record.actor_hostname is not None}
        line += f"; {counted(len(ips), 'actor IP')}, {counted(len(hostnames), 'actor host name')}"
        if parsed.dropped:
            reasons = ", ".join(f"{reason} x{count}" for reason, count in sorted(parsed.dropped.items()))
            line += f"; ignored: {reasons}"
        if objects_sent is not None:
            line += f"; {counted(objects_sent, 'object')} sent"
        return line + self._cost()

    def _cost(self) -> str:
        """What the lookups cost: HTTP requests (retries included), and lookups the cache answered."""
        calls = counted(self.api_calls, "API call")
        retries = self.api_calls - self.asked
        if retries > 0:
            calls += f" ({counted(self.asked, 'lookup')}, {retries} retr{'y' if retries == 1 else 'ies'})"
        return f" [{calls}, {self.cached} answered by the cache]" if self.cached else f" [{calls}]"


def counted(number: int, noun: str) -> str:
    """`1 record`, `2 records`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def look_up(
    client: MalbeaconClient, entity: EnrichedEntity, endpoints: Sequence[str], max_records: int = 10_000
) -> LookupOutcome:
    """Ask Malbeacon every endpoint for the entity's value (stopping at the first failure); keep the
    `max_records` newest records."""
    result = LookupOutcome(entity, max_records=max_records)
    for endpoint in endpoints:
        sent_before = client.requests_sent
        try:
            answer = client.answer(endpoint, entity.value)
        except MalbeaconError as error:
            result.error = error
        result.api_calls += client.requests_sent - sent_before
        if result.error is not None:
            result.asked += 1
            break
        result.cached += answer.cached
        result.asked += not answer.cached
        parsed = parse_records(answer.rows)
        result.lookups.append(Lookup(endpoint, parsed.records))
        result.parsed.extend(parsed)
    _keep_newest(result, max_records)
    return result


@dataclass
class Enriched:
    """What the pipeline made of some entities: each one's lookup outcome, and the STIX objects of them all."""

    outcomes: list[LookupOutcome]
    objects: list[dict]


def enrich_entities(
    client: MalbeaconClient,
    entities: Sequence[EnrichedEntity],
    settings: MalbeaconSettings,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> Enriched:
    """The pipeline, for the connector and the command line alike: each entity's lookups (its type's
    endpoints), their records, and one conversion of them all into STIX objects."""
    plan = lookup_plan(settings)
    outcomes = []
    for done, entity in enumerate(entities, start=1):
        outcomes.append(look_up(client, entity, plan[entity.entity_type], settings.max_records))
        if progress is not None:
            progress(done, len(entities))
    conversion = convert([outcome.as_findings() for outcome in outcomes], conversion_options(settings), now)
    return Enriched(outcomes, conversion.objects)


def _keep_newest(result: LookupOutcome, max_records: int) -> None:
    """Keep the newest records of all lookups (undated ones last) and count the others."""
    total = sum(len(lookup.records) for lookup in result.lookups)
    if total <= max_records:
        return
    dated = [
        (record.seen_at, index, position)
        for index, lookup in enumerate(result.lookups)
        for position, record in enumerate(lookup.records)
    ]
    oldest_first = datetime.min.replace(tzinfo=UTC)
    dated.sort(key=lambda item: (item[0] is not None, item[0] or oldest_first), reverse=True)
    kept = {(index, position) for _, index, position in dated[:max_records]}
    result.lookups = [
        Lookup(lookup.endpoint, [r for position, r in enumerate(lookup.records) if (index, position) in kept])
        for index, lookup in enumerate(result.lookups)
    ]
    result.left_out = total - max_records


def entity_for_value(value: str, entity_type: str, tlp: str) -> EnrichedEntity:
    """A STIX observable for a value given on the command line, marked with its TLP."""
    stix_type = STIX_TYPES[entity_type]
    stix_object = {"type": stix_type, "spec_version": "2.1", "id": observable_id(stix_type, value), "value": value}
    if tlp != "TLP:CLEAR":
        stix_object["object_marking_refs"] = [marking_id(tlp)]
    return EnrichedEntity(stix_object, entity_type, value, tlp)
