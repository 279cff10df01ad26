"""What the conversion works on: the enriched entity, the records of each lookup, the options, the result."""

from collections.abc import Sequence
from dataclasses import dataclass

from malbeacon_connector.malbeacon.endpoints import ROLES
from malbeacon_connector.malbeacon.records import BeaconRecord

Key = tuple[str, str]  # (OpenCTI entity type, value)


@dataclass(frozen=True)
class EnrichedEntity:
    """The observable being enriched: its STIX form, OpenCTI type, value and TLP; and, when the value is one of
    an indicator's, that indicator's id (it `indicates` the C2 panels the value is)."""

    stix_object: dict
    entity_type: str
    value: str
    tlp: str = "TLP:CLEAR"
    indicator_id: str | None = None

    @property
    def stix_id(self) -> str:
        return self.stix_object["id"]

    @property
    def key(self) -> Key:
        return self.entity_type, self.value


@dataclass(frozen=True)
class Lookup:
    """The records of one Malbeacon endpoint for the enriched value."""

    endpoint: str
    records: Sequence[BeaconRecord]

    @property
    def role(self) -> str:
        """What the enriched value is in these records: the `c2`, the `actor`, or a `user-agent`."""
        return ROLES[self.endpoint]


@dataclass
class Findings:
    """One entity and the lookups made for it."""

    entity: EnrichedEntity
    lookups: Sequence[Lookup] = ()

    @property
    def records(self) -> list[BeaconRecord]:
        return [record for lookup in self.lookups for record in lookup.records]


@dataclass(frozen=True)
class ConversionOptions:
    """What to build besides actors and indicators; see the settings of the same names."""

    score: int = 50
    indicators: bool = True
    indicator_valid_from: str = "enrichment"  # or "last_seen"; see validity.py
    infrastructure: bool = True
    autonomous_systems: bool = True
    countries: bool = True
    labels: bool = True
    seen_times: bool = True
    user_agents: bool = False


@dataclass
class Conversion:
    """The new objects of a conversion, the updated enriched entities among them."""

    objects: list[dict]
