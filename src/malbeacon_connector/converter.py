"""Records -> STIX 2.1 objects, as plain JSON-ready dicts. Pure: no I/O, no clock.

For every distinct actor IP and host name: an observable, an indicator `based-on` it and
a `related-to` relationship to each enriched observable the actor reached; a host name
`resolves-to` each IP it was seen with. The enriched observable gets an external
reference to Malbeacon. Ids are deterministic, each object appears once, and derived
objects carry the most restrictive TLP of the entities they come from.
"""

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .patterns import value_pattern
from .records import BeaconRecord
from .stix_ids import identity_id, indicator_id, observable_id, relationship_id
from .tlp import MARKING_DEFINITIONS, marking_id, most_restrictive, tlp_rank
from .values import STIX_TYPES

AUTHOR_NAME = "Malbeacon"
AUTHOR_ID = identity_id(AUTHOR_NAME, "organization")
SCO_EXTENSION = "extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82"
_AUTHOR_DESCRIPTION = (
    "Malbeacon implants beacons in malware bot check-in traffic: the adversaries who log into "
    "those malware C2 panels can then be tracked to their origin networks."
)


@dataclass(frozen=True)
class EnrichedEntity:
    """The observable being enriched: its STIX form, OpenCTI type, value and TLP."""

    stix_object: dict
    entity_type: str
    value: str
    tlp: str = "TLP:CLEAR"

    @property
    def stix_id(self) -> str:
        return self.stix_object["id"]


@dataclass
class Enrichment:
    """One entity and the records Malbeacon returned for it (from every lookup made)."""

    entity: EnrichedEntity
    records: Sequence[BeaconRecord]
    lookups: Sequence[str] = ()


@dataclass
class Conversion:
    """The new objects (and updated entities) of a conversion, with what they hold."""

    objects: list[dict]
    actor_ips: int
    actor_hostnames: int


@dataclass
class _Actor:
    """What all records say about one actor IP or host name."""

    entity_type: str
    value: str
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    tags: dict[str, None] = field(default_factory=dict)
    tlps: set[str] = field(default_factory=set)
    targets: dict[str, str] = field(default_factory=dict)  # enriched entity id -> its TLP

    @property
    def stix_type(self) -> str:
        return STIX_TYPES[self.entity_type]

    @property
    def tlp(self) -> str:
        return most_restrictive(self.tlps)

    def observe(self, record: BeaconRecord, entity: EnrichedEntity) -> None:
        seen = record.seen_at
        if seen is not None:
            self.first_seen = seen if self.first_seen is None else min(self.first_seen, seen)
            self.last_seen = seen if self.last_seen is None else max(self.last_seen, seen)
        self.tags.update(dict.fromkeys(record.tags))
        self.tlps.add(entity.tlp)
        self.targets[entity.stix_id] = entity.tlp


def stix_time(moment: datetime) -> str:
    """A STIX timestamp: UTC, millisecond precision, `Z` suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _Builder:
    """Accumulates the objects of one conversion, each id once."""

    def __init__(self, score: int, now: datetime) -> None:
        self.score = score
        self.now = stix_time(now)
        self.objects: dict[str, dict] = {}
        self.tlps: set[str] = set()

    def add(self, stix_object: dict) -> str:
        self.objects.setdefault(stix_object["id"], stix_object)
        return stix_object["id"]

    def markings(self, tlp: str) -> list[str]:
        self.tlps.add(tlp)
        return [marking_id(tlp)]

    def author(self) -> None:
        self.add(
            {
                "type": "identity",
                "spec_version": "2.1",
                "id": AUTHOR_ID,
                "created": self.now,
                "modified": self.now,
                "name": AUTHOR_NAME,
                "identity_class": "organization",
                "description": _AUTHOR_DESCRIPTION,
                "external_references": [{"source_name": AUTHOR_NAME, "url": "https://malbeacon.com/"}],
            }
        )

    def actor(self, actor: _Actor) -> str:
        seen = _seen_text(actor)
        observable = {
            "type": actor.stix_type,
            "spec_version": "2.1",
            "id": "",
            "value": actor.value,
            "object_marking_refs": self.markings(actor.tlp),
            "x_opencti_score": self.score,
            "x_opencti_description": f"Malbeacon saw this actor log into C2 panels{seen}.",
            "x_opencti_created_by_ref": AUTHOR_ID,
        }
        observable["id"] = observable_id(actor.stix_type, actor.value)
        if actor.tags:
            observable["x_opencti_labels"] = list(actor.tags)
        self.add(observable)
        pattern = value_pattern(actor.stix_type, actor.value)
        indicator = {
            "type": "indicator",
            "spec_version": "2.1",
            "id": indicator_id(pattern),
            "created": self.now,
            "modified": self.now,
            "name": actor.value,
            "description": f"Actor infrastructure: logged into C2 panels tracked by Malbeacon{seen}.",
            "indicator_types": ["attribution"],
            "pattern": pattern,
            "pattern_type": "stix",
            "valid_from": stix_time(actor.first_seen) if actor.first_seen else self.now,
            "created_by_ref": AUTHOR_ID,
            "object_marking_refs": self.markings(actor.tlp),
            "x_opencti_score": self.score,
            "x_opencti_main_observable_type": actor.entity_type,
        }
        if actor.tags:
            indicator["labels"] = list(actor.tags)
        self.add(indicator)
        self.relationship("based-on", indicator["id"], observable["id"], actor.tlp)
        return observable["id"]

    def relationship(self, relationship_type: str, source: str, target: str, tlp: str, description: str = "") -> None:
        relationship = {
            "type": "relationship",
            "spec_version": "2.1",
            "id": relationship_id(relationship_type, source, target),
            "created": self.now,
            "modified": self.now,
            "relationship_type": relationship_type,
            "source_ref": source,
            "target_ref": target,
            "created_by_ref": AUTHOR_ID,
            "object_marking_refs": self.markings(tlp),
        }
        if description:
            relationship["description"] = description
        self.add(relationship)

    def ordered(self) -> list[dict]:
        markings = [MARKING_DEFINITIONS[tlp] for tlp in sorted(self.tlps, key=tlp_rank)]
        return markings + list(self.objects.values())


def _seen_text(actor: _Actor) -> str:
    if actor.first_seen is None or actor.last_seen is None:
        return ""
    return f" (first seen {stix_time(actor.first_seen)}, last seen {stix_time(actor.last_seen)})"


def with_external_reference(stix_object: dict, reference: dict) -> dict:
    """A copy of an observable with `reference` added to its OpenCTI extension (replacing an older one)."""
    updated = copy.deepcopy(stix_object)
    updated.pop("x_opencti_external_references", None)
    extension = updated.setdefault("extensions", {}).setdefault(SCO_EXTENSION, {"extension_type": "property-extension"})
    key = (reference["source_name"], reference.get("external_id"))
    kept = [
        ref
        for ref in extension.get("external_references", [])
        if (ref.get("source_name"), ref.get("external_id")) != key
    ]
    extension["external_references"] = [*kept, reference]
    return updated


def malbeacon_reference(enrichment: Enrichment) -> dict:
    """The external reference telling what Malbeacon knows of an enriched value."""
    times = sorted(record.seen_at for record in enrichment.records if record.seen_at is not None)
    span = f", from {stix_time(times[0])} to {stix_time(times[-1])}" if times else ""
    lookups = ", ".join(enrichment.lookups) or f"c2/c2/{enrichment.entity.value}"
    return {
        "source_name": AUTHOR_NAME,
        "external_id": lookups,
        "description": f"Known to Malbeacon as a C2: {len(enrichment.records)} beacon record(s){span}.",
    }


def convert(enrichments: Sequence[Enrichment], *, score: int, now: datetime) -> Conversion:
    """The STIX objects for some enrichments; entities with records come back updated."""
    builder = _Builder(score, now)
    actors: dict[tuple[str, str], _Actor] = {}
    resolutions: dict[tuple[tuple[str, str], tuple[str, str]], str] = {}  # (host name, IP) -> TLP
    for enrichment in enrichments:
        entity = enrichment.entity
        for record in enrichment.records:
            for key in _actor_keys(record):
                actors.setdefault(key, _Actor(*key)).observe(record, entity)
            if record.actor_ip and record.actor_hostname:
                pair = (("Domain-Name", record.actor_hostname), (record.actor_ip.entity_type, record.actor_ip.value))
                resolutions[pair] = most_restrictive([resolutions.get(pair, "TLP:CLEAR"), entity.tlp])
    found = [enrichment for enrichment in enrichments if enrichment.records]
    if not found:
        return Conversion([], 0, 0)
    builder.author()
    for enrichment in found:
        builder.add(with_external_reference(enrichment.entity.stix_object, malbeacon_reference(enrichment)))
    actor_ids: dict[tuple[str, str], str] = {}
    for key, actor in actors.items():
        actor_ids[key] = builder.actor(actor)
        for target, target_tlp in actor.targets.items():
            if target == actor_ids[key]:  # the enriched value is itself one of the actors
                continue
            builder.relationship(
                "related-to",
                actor_ids[key],
                target,
                most_restrictive([actor.tlp, target_tlp]),
                "Logged into this C2 panel (Malbeacon beacon)",
            )
    for (hostname, ip), tlp in resolutions.items():
        builder.relationship("resolves-to", actor_ids[hostname], actor_ids[ip], tlp)
    ip_count = sum(1 for entity_type, _ in actors if entity_type != "Domain-Name")
    return Conversion(builder.ordered(), ip_count, len(actors) - ip_count)


def _actor_keys(record: BeaconRecord) -> list[tuple[str, str]]:
    values = []
    if record.actor_ip is not None:
        values.append((record.actor_ip.entity_type, record.actor_ip.value))
    if record.actor_hostname is not None:
        values.append(("Domain-Name", record.actor_hostname))
    return values
