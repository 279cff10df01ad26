"""A stand-in for the existing public Malbeacon connector, to measure it beside this one in one run.

Written for the benchmark from that connector's documented behaviour (not its code), with the
same kind of work per message, which is what costs time:
- the entity read once more through the API, the TLP checked, one `c2/c2/{value}` request;
- each record parsed into a pydantic model, its time parsed by dateutil for the log;
- `stix2` library objects: the author, the enriched observable again, its indicator and `based-on`;
- per record with a new actor IP: an IP observable, an indicator, `based-on` and `related-to`
  from the enriched observable; the same four for the record's host name, if any (IPs are
  de-duplicated, host names are not);
- the whole bundle sent with pycti's `send_stix2_bundle`.
It reads the same settings as the connector (OPENCTI_*, CONNECTOR_*, MALBEACON_*).

    python bench/legacy_connector.py
"""

import ipaddress
import os
import re
from datetime import datetime
from typing import Any

import requests
import stix2
from dateutil import parser
from pycti import Identity, Indicator, OpenCTIConnectorHelper, StixCoreRelationship
from pydantic import create_model

HOST_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.IGNORECASE)
SOURCE = "https://portal.malbeacon.com/illuminate"
SCORE = 50
FIELDS = [
    "tstamp",
    "actorasnorg",
    "actorcity",
    "actorcountrycode",
    "actorhostname",
    "actorip",
    "actorloc",
    "actorregion",
    "actortimezone",
    "c2",
    "c2asnorg",
    "c2city",
    "c2countrycode",
    "c2domain",
    "c2domainresolved",
    "c2hostname",
    "c2loc",
    "c2region",
    "c2timezone",
    "cookie_id",
    "useragent",
    "tags",
]
Beacon = create_model("Beacon", **{name: (str | None, None) for name in FIELDS})  # each record is parsed


def _kind(value: str) -> str:
    """The STIX type of a value: ipv4-addr, ipv6-addr or domain-name."""
    try:
        return "ipv4-addr" if ipaddress.ip_address(value).version == 4 else "ipv6-addr"
    except ValueError:
        if HOST_NAME.match(value):
            return "domain-name"
        raise ValueError(f"{value!r} is neither an IP address nor a domain name") from None


class LegacyConnector:
    def __init__(self) -> None:
        self.helper = OpenCTIConnectorHelper({}, True)
        self.api_key = os.environ["MALBEACON_API_KEY"]
        self.base_url = os.environ["MALBEACON_API_BASE_URL"]
        self.max_tlp = os.environ.get("MALBEACON_MAX_TLP", "TLP:AMBER")

    def reference(self) -> list[stix2.ExternalReference]:
        return [stix2.ExternalReference(source_name="Malbeacon C2 Domains", url=SOURCE)]

    def observable(self, value: str, author: dict, stix_id: str | None = None) -> Any:
        factory = {"ipv4-addr": stix2.IPv4Address, "ipv6-addr": stix2.IPv6Address, "domain-name": stix2.DomainName}
        custom = {
            "x_opencti_created_by_ref": author["id"],
            "x_opencti_external_references": self.reference(),
            "x_opencti_score": SCORE,
        }
        return factory[_kind(value)](id=stix_id, value=value, custom_properties=custom)

    def indicator(self, value: str, author: dict, description: str | None = None) -> stix2.Indicator:
        pattern = f"[{_kind(value)}:value = '{value}']"
        return stix2.Indicator(
            id=Indicator.generate_id(pattern),
            name=value,
            description=description,
            pattern_type="stix",
            pattern=pattern,
            valid_from=datetime.now(),
            created_by_ref=author["id"],
            external_references=self.reference(),
            custom_properties={"x_opencti_score": SCORE},
        )

    def relationship(self, source: str, kind: str, target: str, author: dict) -> stix2.Relationship:
        return stix2.Relationship(
            id=StixCoreRelationship.generate_id(kind, source, target),
            relationship_type=kind,
            source_ref=source,
            target_ref=target,
            created_by_ref=author["id"],
            external_references=self.reference(),
        )

    def linked(self, value: str, enriched_id: str, author: dict, description: str) -> list:
        """An observable, its indicator, `based-on`, and `related-to` from the enriched observable."""
        observable = self.observable(value, author)
        indicator = self.indicator(value, author, description)
        return [
            observable,
            indicator,
            self.relationship(indicator["id"], "based-on", observable["id"], author),
            self.relationship(enriched_id, "related-to", observable["id"], author),
        ]

    def process(self, data: dict) -> str:
        entity = self.helper.api.stix_cyber_observable.read(id=data["entity_id"])
        tlp = next((m["definition"] for m in entity["objectMarking"] if m["definition_type"] == "TLP"), None)
        if not self.helper.check_max_tlp(tlp, self.max_tlp):
            raise ValueError("TLP above the maximum")
        enriched = data["stix_entity"]
        value = enriched["value"]
        answer = requests.get(self.base_url + "c2/c2/" + value, headers={"X-Api-Key": self.api_key}, timeout=60)
        records = answer.json()
        if not isinstance(records, list):
            return "No information found on Malbeacon"
        author = stix2.Identity(
            id=Identity.generate_id("Malbeacon", "organization"), name="Malbeacon", identity_class="organization"
        )
        again = self.observable(value, author, enriched["id"])
        indicator = self.indicator(value, author)
        objects = [*data["stix_objects"], author, again, indicator]
        objects.append(self.relationship(indicator["id"], "based-on", again["id"], author))
        seen_ips: list[str] = []
        for record in records:
            beacon = Beacon.model_validate(record)
            seen_at = parser.parse(beacon.tstamp).strftime("%Y-%m-%dT%H:%M:%S+00:00")
            self.helper.connector_logger.debug("Processing", {"date": seen_at, "actor_ip": beacon.actorip})
            actor_ip, host_name = beacon.actorip, beacon.actorhostname
            if actor_ip == "NA" or actor_ip in seen_ips:
                continue
            objects += self.linked(actor_ip, enriched["id"], author, f"Malbeacon Actor IP Address for C2 {value}")
            if host_name != "NA":
                objects += self.linked(host_name, enriched["id"], author, f"Malbeacon Actor DomainName for C2 {value}")
            seen_ips.append(actor_ip)
        sent = self.helper.send_stix2_bundle(self.helper.stix2_create_bundle(objects))
        return f"Knowledge added, {len(sent)} bundles sent"


if __name__ == "__main__":
    connector = LegacyConnector()
    connector.helper.listen(connector.process)
