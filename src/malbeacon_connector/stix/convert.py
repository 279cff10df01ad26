"""Records -> STIX 2.1 objects, as plain JSON-ready dicts. Pure: no I/O, no clock.

- Every distinct actor IP and host name: an observable and an indicator `based-on` it; a host
  name `resolves-to` each IP it was seen with; an actor IP `belongs-to` its autonomous system and
  is `located-at` its country.
- Every C2 panel: an `infrastructure` (command-and-control) that `consists-of` the enriched
  observable (when it is the C2) and the C2's domain, resolved IP and URL, and
  `communicates-with` every actor that logged into it. The C2's IP `belongs-to` its AS and is
  `located-at` its country. With infrastructures switched off, actors are `related-to` the
  enriched C2 instead.
- When the enriched value is one of an indicator's, that indicator `indicates` every panel the value
  is (none when infrastructures are switched off).
- When the enriched value is itself the actor (`actorip`, `actorhostname` lookups), it is
  linked to the panels it reached; for a user agent, the actors who used it are `related-to` it.
- The enriched observable gets Malbeacon's external reference, the tags as labels, and its
  score raised to the configured level.

Ids are deterministic, each object appears once, and derived objects carry the most
restrictive TLP of the entities they come from.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

from malbeacon_connector.gc_pause import gc_paused
from malbeacon_connector.malbeacon.records import BeaconRecord
from malbeacon_connector.stix.builder import StixBuilder, stix_time
from malbeacon_connector.stix.enriched import updated_entity
from malbeacon_connector.stix.models import Conversion, ConversionOptions, EnrichedEntity, Findings, Key, Lookup
from malbeacon_connector.stix.validity import indicator_validity
from malbeacon_connector.tlp import most_restrictive
from malbeacon_connector.values import IP_TYPES, AutonomousSystem, Country, internal_address, url_host

PORTAL_URL = "https://malbeacon.com/illuminate"
MAX_LABELS = 50  # per object, first seen first
_INDICATES = "A value of this indicator is this C2 panel, tracked by Malbeacon."


@dataclass(slots=True)
class _Seen:
    """First and last beacon times of something."""

    first: datetime | None = None
    last: datetime | None = None

    def add(self, moment: datetime | None) -> None:
        if moment is not None:
            self.first = moment if self.first is None else min(self.first, moment)
            self.last = moment if self.last is None else max(self.last, moment)

    def text(self) -> str:
        if self.first is None or self.last is None:
            return ""
        return f" (first seen {stix_time(self.first)}, last seen {stix_time(self.last)})"


@dataclass(slots=True)
class _Fact:
    """Something seen in records of entities of some TLPs, with their times and tags."""

    seen: _Seen = field(default_factory=_Seen)
    tlps: set[str] = field(default_factory=set)
    tags: dict[str, None] = field(default_factory=dict)

    @property
    def tlp(self) -> str:
        return most_restrictive(self.tlps)

    def observe(self, record: BeaconRecord, tlp: str) -> None:
        self.seen.add(record.seen_at)
        self.tlps.add(tlp)
        if len(self.tags) < MAX_LABELS:
            self.tags.update(dict.fromkeys(record.tags[: MAX_LABELS - len(self.tags)]))


@dataclass(slots=True)
class _Actor(_Fact):
    """An actor IP or host name."""

    targets: dict[str, None] = field(default_factory=dict)  # enriched ids it is related-to, in order seen
    systems: set[AutonomousSystem] = field(default_factory=set)
    countries: set[Country] = field(default_factory=set)
    agents: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Panel(_Fact):
    """A C2 panel, named after its host."""

    enriched: dict[str, None] = field(default_factory=dict)  # enriched ids that are this C2, in order seen
    indicators: dict[str, None] = field(default_factory=dict)  # ids of the indicators of those, in order seen
    parts: dict[Key, set[str]] = field(default_factory=dict)  # C2 observable -> TLPs
    actors: dict[Key, _Seen] = field(default_factory=dict)


@dataclass(slots=True)
class _C2Address:
    """What the records say about a C2 server's IP address."""

    systems: set[AutonomousSystem] = field(default_factory=set)
    countries: set[Country] = field(default_factory=set)


class _Graph:
    """What all records say, gathered before any object is built."""

    def __init__(self, options: ConversionOptions) -> None:
        self.options = options
        self.actors: dict[Key, _Actor] = {}
        self.panels: dict[str, _Panel] = {}
        self.addresses: dict[Key, _C2Address] = {}
        self.resolutions: dict[tuple[Key, Key], None] = {}  # (host name, IP), in order seen
        self.enriched_ids: dict[Key, str] = {}

    def add(self, entity: EnrichedEntity, lookup: Lookup) -> None:
        self.enriched_ids[entity.key] = entity.stix_id
        for record in lookup.records:
            actor_keys = self._add_actors(entity, lookup.role, record)
            panel_name = _panel_name(record, entity, lookup.role)
            if self.options.infrastructure and panel_name is not None:
                self._add_panel(panel_name, entity, lookup.role, record, actor_keys)

    def _add_actors(self, entity: EnrichedEntity, role: str, record: BeaconRecord) -> list[Key]:
        ip_key = record.actor_ip.key if record.actor_ip else None
        host_key = ("Domain-Name", record.actor_hostname) if record.actor_hostname else None
        keys = [key for key in (ip_key, host_key) if key is not None]
        if role == "actor" and entity.key not in keys:
            keys.append(entity.key)
        for key in keys:
            actor = self.actors.setdefault(key, _Actor())
            actor.observe(record, entity.tlp)
            if role == "user-agent" or (role == "c2" and not self.options.infrastructure):
                actor.targets[entity.stix_id] = None
        if ip_key is not None:
            actor = self.actors[ip_key]
            if record.actor_asn:
                actor.systems.add(record.actor_asn)
            if record.actor_country:
                actor.countries.add(record.actor_country)
            if record.user_agent:
                actor.agents.add(record.user_agent)
        if ip_key is not None and host_key is not None:
            self.resolutions[(host_key, ip_key)] = None
        return keys

    def _add_panel(
        self, name: str, entity: EnrichedEntity, role: str, record: BeaconRecord, actor_keys: list[Key]
    ) -> None:
        panel = self.panels.setdefault(name, _Panel())
        panel.observe(record, entity.tlp)
        if role == "c2":
            panel.enriched[entity.stix_id] = None
            if entity.indicator_id is not None:
                panel.indicators[entity.indicator_id] = None
        domain = ("Domain-Name", record.c2_domain) if record.c2_domain else None
        resolved = record.c2_domain_resolved.key if record.c2_domain_resolved else None
        for part in (domain, resolved, ("Url", record.c2_url) if record.c2_url else None):
            if part is not None:
                panel.parts.setdefault(part, set()).add(entity.tlp)
        if domain is not None and resolved is not None:
            self.resolutions[(domain, resolved)] = None
        address = resolved or _url_ip(record.c2_url) or (entity.key if role == "c2" and _is_ip(entity.key) else None)
        if address is not None and (record.c2_asn or record.c2_country):
            facts = self.addresses.setdefault(address, _C2Address())
            if record.c2_asn:
                facts.systems.add(record.c2_asn)
            if record.c2_country:
                facts.countries.add(record.c2_country)
        for key in actor_keys:
            panel.actors.setdefault(key, _Seen()).add(record.seen_at)


def _is_ip(key: Key) -> bool:
    return key[0] in IP_TYPES


def _url_ip(url: str | None) -> Key | None:
    host = url_host(url) if url else None
    return host if host is not None and _is_ip(host) else None


def _panel_name(record: BeaconRecord, entity: EnrichedEntity, role: str) -> str | None:
    """The host naming a C2 panel: its domain, its URL's host, or the enriched value when it is the C2."""
    if record.c2_domain:
        return record.c2_domain
    host = url_host(record.c2_url) if record.c2_url else None
    if host is not None:
        return host[1]
    return entity.value if role == "c2" else None


class _Writer:
    """Turns the gathered graph into STIX objects."""

    def __init__(self, graph: _Graph, builder: StixBuilder, now: datetime) -> None:
        self.graph = graph
        self.options = graph.options
        self.builder = builder
        self.now = now
        self.ids: dict[Key, str] = dict(graph.enriched_ids)
        self.tlps: dict[str, str] = {}  # object id -> TLP, for relationships
        self.key_tlps = _observable_tlps(graph)  # final before any object is built: the builder keeps the first
        for key, enriched_id in graph.enriched_ids.items():
            self.mark(enriched_id, self.key_tlps.get(key, "TLP:CLEAR"))

    def mark(self, object_id: str, tlp: str) -> None:
        """Raise the TLP an object is known by (for the relationships touching it) to at least `tlp`."""
        self.tlps[object_id] = most_restrictive([self.tlps.get(object_id, "TLP:CLEAR"), tlp])

    def link(self, relationship_type: str, source: str, target: str, description: str = "") -> None:
        tlp = most_restrictive([self.tlps.get(source, "TLP:CLEAR"), self.tlps.get(target, "TLP:CLEAR")])
        self.builder.relationship(relationship_type, source, target, tlp, description)

    def observable(self, key: Key, tlp: str, **details: object) -> str:
        """The id of an observable, built the first time with the most restrictive TLP of all its uses."""
        tlp = most_restrictive([tlp, self.key_tlps.get(key, "TLP:CLEAR")])
        if key not in self.ids:
            self.ids[key] = self.builder.observable(key[0], key[1], tlp, **details)  # type: ignore[arg-type]
        self.mark(self.ids[key], tlp)
        return self.ids[key]

    def actors(self) -> None:
        for key, actor in self.graph.actors.items():
            labels = list(actor.tags) if self.options.labels else None
            seen = actor.seen.text() if self.options.seen_times else ""
            enriched = key in self.ids
            internal = internal_address(key[1]) if key[0] in IP_TYPES else None
            why_not = f" No indicator: {internal} would match internal traffic." if internal else ""
            actor_id = self.observable(
                key,
                actor.tlp,
                description=f"Malbeacon saw this actor log into C2 panels{seen}.{why_not}",
                labels=labels,
            )
            if not enriched and self.options.indicators and not internal:
                tlp = self.tlps[actor_id]  # the value's: it is in the pattern
                indicator_id = self.builder.indicator(
                    key[0],
                    key[1],
                    tlp,
                    indicator_validity(self.options.indicator_valid_from, key[0], actor.seen.last, self.now),
                    f"Actor infrastructure: logged into C2 panels tracked by Malbeacon{seen}.",
                    labels,
                )
                self.mark(indicator_id, tlp)
                self.link("based-on", indicator_id, actor_id)
            for target in actor.targets:  # enriched entities: their TLP is known
                if target != actor_id:
                    self.link("related-to", actor_id, target, "Logged into this C2 panel or used this user agent")
            self.context(actor_id, actor.systems, actor.countries)
            if self.options.user_agents:
                for agent in sorted(actor.agents):
                    self.link(
                        "related-to",
                        actor_id,
                        self.observable(("User-Agent", agent), actor.tlp),
                        "Browser user agent of this actor when logging into a C2 panel",
                    )

    def context(self, address_id: str, systems: set[AutonomousSystem], countries: set[Country]) -> None:
        if self.options.autonomous_systems:
            for system in sorted(systems, key=lambda item: item.number):
                self.link("belongs-to", address_id, self.builder.autonomous_system(system))
        if self.options.countries:
            for country in sorted(countries, key=lambda item: item.code):
                self.link("located-at", address_id, self.builder.country(country))

    def panels(self) -> None:
        for name, panel in self.graph.panels.items():
            labels = list(panel.tags) if self.options.labels else None
            seen = panel.seen if self.options.seen_times else _Seen()
            panel_id = self.builder.infrastructure(
                f"C2 panel {name}",
                panel.tlp,
                f"Command-and-control panel at {name}, tracked by Malbeacon.",
                seen.first,
                seen.last,
                labels,
            )
            self.tlps[panel_id] = panel.tlp
            for enriched_id in panel.enriched:
                self.link("consists-of", panel_id, enriched_id)
            for indicator_id in panel.indicators:
                self.link("indicates", indicator_id, panel_id, _INDICATES)
            for part, tlps in panel.parts.items():
                self.link("consists-of", panel_id, self.observable(part, most_restrictive(tlps)))
            for key, actor_seen in panel.actors.items():
                when = actor_seen.text() if self.options.seen_times else ""
                self.link("communicates-with", panel_id, self.ids[key], f"This actor logged into the panel{when}.")
        for address, facts in self.graph.addresses.items():
            if address in self.ids:
                self.context(self.ids[address], facts.systems, facts.countries)

    def resolutions(self) -> None:
        for host, address in self.graph.resolutions:
            if host in self.ids and address in self.ids:
                self.link("resolves-to", self.ids[host], self.ids[address])


def _observable_tlps(graph: _Graph) -> dict[Key, str]:
    """The most restrictive TLP of every entity each observable comes from: as an actor, a user agent or a
    C2 part, whatever the order the entities were gathered in."""
    uses: dict[Key, set[str]] = {}
    for key, actor in graph.actors.items():
        uses.setdefault(key, set()).update(actor.tlps)
        for agent in actor.agents if graph.options.user_agents else ():
            uses.setdefault(("User-Agent", agent), set()).update(actor.tlps)
    for panel in graph.panels.values():
        for part, tlps in panel.parts.items():
            uses.setdefault(part, set()).update(tlps)
    return {key: most_restrictive(tlps) for key, tlps in uses.items()}


def portal_url(value: str) -> str:
    """The Malbeacon portal page, with the value in its fragment: a link a user can open, and one
    external reference per observable (the platform identifies a reference by its URL)."""
    return f"{PORTAL_URL}#{quote(value, safe='')}"


def malbeacon_reference(enrichment: Findings) -> dict:
    """The external reference telling what Malbeacon knows of an enriched value; the same reference
    whatever the lookups (the platform adds references on upsert, never removes them)."""
    records = enrichment.records
    times = sorted(record.seen_at for record in records if record.seen_at is not None)
    span = f", from {stix_time(times[0])} to {stix_time(times[-1])}" if times else ""
    lookups = ", ".join(f"c2/{lookup.endpoint}" for lookup in enrichment.lookups if lookup.records)
    return {
        "source_name": "Malbeacon",
        "url": portal_url(enrichment.entity.value),
        "external_id": enrichment.entity.value,
        "description": f"Known to Malbeacon: {len(records)} beacon record(s){span}; lookups: {lookups}.",
    }


def convert(enrichments: Sequence[Findings], options: ConversionOptions, now: datetime) -> Conversion:
    """The STIX objects for some enrichments; entities with records come back updated."""
    with gc_paused():
        return _convert(enrichments, options, now)


def _convert(enrichments: Sequence[Findings], options: ConversionOptions, now: datetime) -> Conversion:
    found = [enrichment for enrichment in enrichments if enrichment.records]
    if not found:
        return Conversion([])
    graph = _Graph(options)
    for enrichment in found:
        for lookup in enrichment.lookups:
            graph.add(enrichment.entity, lookup)
    builder = StixBuilder(options.score, now)
    builder.author()
    for enrichment in found:
        tags = [tag for record in enrichment.records for tag in record.tags] if options.labels else []
        entity = enrichment.entity
        builder.add(
            updated_entity(
                entity.stix_object, malbeacon_reference(enrichment), list(dict.fromkeys(tags)), options.score
            )
        )
    writer = _Writer(graph, builder, now)
    for enrichment in found:
        writer.mark(enrichment.entity.stix_id, enrichment.entity.tlp)
    writer.actors()
    writer.panels()
    writer.resolutions()
    return Conversion(builder.ordered())
