"""Builds the STIX 2.1 objects of one conversion as JSON-ready dicts, each id once.

Facts (observables, indicators, infrastructures, relationships) carry a TLP marking;
shared reference objects (the Malbeacon identity, countries, autonomous systems) carry
none: they say nothing about an enrichment, and marking them would restrict the
platform's shared copy. Every relationship to them is marked.
"""

import json
from datetime import UTC, datetime

import stix2

from malbeacon_connector.stix.ids import (
    autonomous_system_id,
    identity_id,
    indicator_id,
    infrastructure_id,
    location_id,
    observable_id,
    relationship_id,
)
from malbeacon_connector.stix.patterns import value_pattern
from malbeacon_connector.tlp import MARKING_DEFINITIONS, marking_id, tlp_rank
from malbeacon_connector.values import STIX_TYPES, AutonomousSystem, Country

AUTHOR_NAME = "Malbeacon"
AUTHOR_ID = identity_id(AUTHOR_NAME, "organization")
_AUTHOR_DESCRIPTION = (
    "Malbeacon implants beacons in malware bot check-in traffic: the adversaries who log into "
    "those malware C2 panels can then be tracked to their origin networks."
)


def stix_time(moment: datetime) -> str:
    """A STIX timestamp: UTC, millisecond precision, `Z` suffix."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


class StixBuilder:
    """Accumulates objects; the first version of an id wins, later ones are ignored."""

    def __init__(self, score: int, now: datetime) -> None:
        self.score = score
        self.now = stix_time(now)
        self.objects: dict[str, dict] = {}
        self.tlps: set[str] = set()
        self._marking_refs: dict[str, list[str]] = {}

    def add(self, stix_object: dict) -> str:
        self.objects.setdefault(stix_object["id"], stix_object)
        return stix_object["id"]

    def _marked(self, tlp: str) -> list[str]:
        """The marking references of a TLP: one list per TLP, shared by the objects (never changed in place)."""
        refs = self._marking_refs.get(tlp)
        if refs is None:
            self.tlps.add(tlp)
            refs = self._marking_refs[tlp] = [marking_id(tlp)]
        return refs

    def _sdo(self, stix_type: str, stix_id: str, tlp: str | None) -> dict:
        sdo = dict(
            type=stix_type,
            spec_version="2.1",
            id=stix_id,
            created=self.now,
            modified=self.now,
            created_by_ref=AUTHOR_ID,
        )
        if tlp is not None:
            sdo["object_marking_refs"] = self._marked(tlp)
        return sdo

    def author(self) -> str:
        author = stix2.Identity(
            id=AUTHOR_ID,
            created=self.now,
            modified=self.now,
            name=AUTHOR_NAME,
            identity_class="organization",
            description=_AUTHOR_DESCRIPTION,
            external_references=[{"source_name": AUTHOR_NAME, "url": "https://malbeacon.com/"}],
        )
        return self.add(json.loads(author.serialize()))

    def observable(
        self,
        entity_type: str,
        value: str,
        tlp: str,
        *,
        description: str = "",
        labels: list[str] | None = None,
    ) -> str:
        stix_type = STIX_TYPES[entity_type]
        observable = {
            "type": stix_type,
            "spec_version": "2.1",
            "id": observable_id(stix_type, value),
            "value": value,
            "object_marking_refs": self._marked(tlp),
            "x_opencti_created_by_ref": AUTHOR_ID,
            "x_opencti_score": self.score,
        }
        if description:
            observable["x_opencti_description"] = description
        if labels:
            observable["x_opencti_labels"] = labels
        return self.add(observable)

    def indicator(
        self,
        entity_type: str,
        value: str,
        tlp: str,
        validity: tuple[datetime, datetime | None],
        description: str,
        labels: list[str] | None,
    ) -> str:
        pattern = value_pattern(STIX_TYPES[entity_type], value)
        indicator = self._sdo("indicator", indicator_id(pattern), tlp)
        indicator.update(
            name=value,
            description=description,
            indicator_types=["attribution"],
            pattern=pattern,
            pattern_type="stix",
            valid_from=stix_time(validity[0]),
            x_opencti_score=self.score,
            x_opencti_main_observable_type=entity_type,
        )
        if validity[1] is not None:
            indicator["valid_until"] = stix_time(validity[1])
        if labels:
            indicator["labels"] = labels
        return self.add(indicator)

    def infrastructure(
        self,
        name: str,
        tlp: str,
        description: str,
        first_seen: datetime | None,
        last_seen: datetime | None,
        labels: list[str] | None,
    ) -> str:
        infrastructure = self._sdo("infrastructure", infrastructure_id(name), tlp)
        infrastructure.update(name=name, description=description, infrastructure_types=["command-and-control"])
        if first_seen is not None and last_seen is not None:
            infrastructure.update(first_seen=stix_time(first_seen), last_seen=stix_time(last_seen))
        if labels:
            infrastructure["labels"] = labels
        return self.add(infrastructure)

    def autonomous_system(self, asn: AutonomousSystem) -> str:
        return self.add(
            {
                "type": "autonomous-system",
                "spec_version": "2.1",
                "id": autonomous_system_id(asn.number),
                "number": asn.number,
                "name": asn.name,
                "x_opencti_created_by_ref": AUTHOR_ID,
            }
        )

    def country(self, country: Country) -> str:
        location = self._sdo("location", location_id(country.name, "Country"), None)
        location.update(
            name=country.name, country=country.code, x_opencti_location_type="Country", x_opencti_aliases=[country.code]
        )
        return self.add(location)

    def relationship(self, relationship_type: str, source: str, target: str, tlp: str, description: str = "") -> str:
        relationship = self._sdo("relationship", relationship_id(relationship_type, source, target), tlp)
        relationship.update(relationship_type=relationship_type, source_ref=source, target_ref=target)
        if description:
            relationship["description"] = description
        return self.add(relationship)

    def ordered(self) -> list[dict]:
        """The marking definitions used, then every object in the order it was added."""
        markings = [MARKING_DEFINITIONS[tlp] for tlp in sorted(self.tlps, key=tlp_rank)]
        return markings + list(self.objects.values())
