"""A fake of the OpenCTI platform's GraphQL API, faithful enough for pycti's real OpenCTIConnectorHelper.

It answers `POST /graphql` on a loopback port the way the platform does for an internal-enrichment
connector (health check, registration, ping, entity read, work reports, playbook step, deletion),
declares the connector's exchanges and queues on a real RabbitMQ at registration, and plays the
platform's part on the broker: it publishes enrichment messages to `listen_<id>` and drains the
bundles the connector pushes to `push_<id>` (the workers' job).

The message shapes follow the platform's source: a manual enrichment carries `work_id`, `entity_id`
(the STIX standard id), `entity_type` and `stix_entity` (and `stix_objects` with the `stix_bundle`
enrichment resolution); a playbook message carries `work_id: null`, no `entity_type`, and
`event.bundle` with the entity alone (see `publish_enrichment`).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import pika
import pika.exceptions
import stix2
from cryptography.hazmat.primitives.asymmetric import rsa
from pycti import Identity, Indicator, MarkingDefinition
from pycti import __version__ as PYCTI_VERSION

from .fake_indicators import INDICATOR_PARENT_TYPES, pattern_observable_values, stix_indicator
from .fake_worker import ImportReport, import_objects, reference_node, unique_objects

CONNECTOR_EXCHANGE = "amqp.connector.exchange"
WORKER_EXCHANGE = "amqp.worker.exchange"
OCTI_EXT = "extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba"
OCTI_SCO_EXT = "extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82"
OPENCTI_ADMIN_UUID = "88ec0c6a-13ce-5e39-b486-354fe4a7084f"
AUTOMATION_MANAGER_USER_UUID = "c49fe040-2dad-412d-af07-ce639204ad55"

TLP_MARKINGS: dict[str, tuple[str, int, str]] = {
    "TLP:CLEAR": ("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", 1, "#ffffff"),
    "TLP:GREEN": ("marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", 2, "#2e7d32"),
    "TLP:AMBER": ("marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", 3, "#d84315"),
    "TLP:AMBER+STRICT": ("marking-definition--826578e1-40ad-459f-bc73-ede076f81f37", 3, "#d84315"),
    "TLP:RED": ("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", 4, "#c62828"),
}
PAP_ORDERS = {"PAP:CLEAR": (1, "#ffffff"), "PAP:GREEN": (2, "#2e7d32"), "PAP:AMBER": (3, "#d84315")}
PAP_ORDERS["PAP:RED"] = (4, "#c62828")

OBSERVABLE_CLASSES: dict[str, type] = {
    "IPv4-Addr": stix2.IPv4Address,
    "IPv6-Addr": stix2.IPv6Address,
    "Domain-Name": stix2.DomainName,
    "Url": stix2.URL,
    "Email-Addr": stix2.EmailAddress,
    "Mac-Addr": stix2.MACAddress,
}
OBSERVABLE_PARENT_TYPES = ["Basic-Object", "Stix-Object", "Stix-Core-Object", "Stix-Cyber-Observable"]
EMPTY_PAGE_INFO = {
    "startCursor": "",
    "endCursor": "",
    "hasNextPage": False,
    "hasPreviousPage": False,
    "globalCount": 0,
}


class BrokerAddress(Protocol):
    """Where the broker is (a `tests.e2e.broker.RabbitMQ` fits)."""

    host: str
    port: int
    tls_port: int
    user: str
    password: str
    vhost: str


def now_iso() -> str:
    """The current time as the platform writes it (ISO 8601, milliseconds, Z)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- GraphQL parsing (only what pycti sends: one operation, one root field) -----------------------

_IDENT = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


@dataclass(frozen=True)
class Operation:
    """The parts of a GraphQL document the fake dispatches on."""

    kind: str  # query | mutation | subscription
    name: str | None  # the operation name, e.g. RegisterConnector
    field: str  # the first root field, e.g. registerConnector
    subfield: str | None  # the first field selected under it, e.g. toProcessed under workEdit


def _skip(text: str, index: int) -> int:
    while index < len(text) and (text[index].isspace() or text[index] == ","):
        index += 1
    return index


def _skip_parens(text: str, index: int) -> int:
    depth = 0
    while index < len(text):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    raise ValueError("unbalanced parentheses")


def _field_at(text: str, index: int) -> tuple[str, int]:
    """The field name at `index` (skipping an alias), and the index after it."""
    match = _IDENT.match(text, _skip(text, index))
    if match is None:
        raise ValueError(f"expected a field at {index}")
    after = _skip(text, match.end())
    if after < len(text) and text[after] == ":":
        match = _IDENT.match(text, _skip(text, after + 1))
        if match is None:
            raise ValueError("expected a field after an alias")
    return match.group(0), match.end()


def parse_operation(query: str) -> Operation:
    """Operation kind, name, first root field and its first sub-field (a tiny GraphQL reader)."""
    text = query.strip()
    kind, name = "query", None
    index = 0
    keyword = _IDENT.match(text)
    if keyword is not None and keyword.group(0) in ("query", "mutation", "subscription"):
        kind = keyword.group(0)
        index = _skip(text, keyword.end())
        named = _IDENT.match(text, index)
        if named is not None:
            name = named.group(0)
            index = _skip(text, named.end())
        if index < len(text) and text[index] == "(":
            index = _skip_parens(text, index)
    index = _skip(text, index)
    if index >= len(text) or text[index] != "{":
        raise ValueError("expected a selection set")
    root, index = _field_at(text, index + 1)
    index = _skip(text, index)
    if index < len(text) and text[index] == "(":
        index = _skip(text, _skip_parens(text, index))
    subfield = None
    if index < len(text) and text[index] == "{":
        subfield, _ = _field_at(text, index + 1)
    return Operation(kind, name, root, subfield)


# -- markings and entities -------------------------------------------------------------------------


def marking_definition(marking: str | Mapping[str, Any]) -> dict[str, Any]:
    """A marking definition in the API shape (objectMarking entries) from a name or a partial dict.

    Names: `TLP:CLEAR|GREEN|AMBER|AMBER+STRICT|RED` (the standard ids), `PAP:CLEAR|GREEN|AMBER|RED`.
    A dict needs `definition_type` and `definition` (e.g. a statement); the rest is filled in.
    """
    if isinstance(marking, str):
        if marking in TLP_MARKINGS:
            partial: dict[str, Any] = {"definition_type": "TLP", "definition": marking}
        elif marking in PAP_ORDERS:
            partial = {"definition_type": "PAP", "definition": marking}
        else:
            raise ValueError(f"unknown marking {marking!r}: pass a dict with definition_type and definition")
    else:
        partial = dict(marking)
    definition_type, definition = partial["definition_type"], partial["definition"]
    order, color = 0, "#ffffff"
    if definition_type == "TLP" and definition in TLP_MARKINGS:
        _, order, color = TLP_MARKINGS[definition]
    elif definition_type == "PAP" and definition in PAP_ORDERS:
        order, color = PAP_ORDERS[definition]
    standard_id = partial.get("standard_id") or MarkingDefinition.generate_id(definition_type, definition)
    created = "2017-01-20T00:00:00.000Z" if definition_type == "TLP" else "2024-01-01T00:00:00.000Z"
    result = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, standard_id)),
        "standard_id": standard_id,
        "entity_type": "Marking-Definition",
        "definition_type": definition_type,
        "definition": definition,
        "created": created,
        "modified": created,
        "x_opencti_order": order,
        "x_opencti_color": color,
    }
    result.update(partial)
    return result


def stix_marking(api_marking: Mapping[str, Any]) -> dict[str, Any]:
    """A marking definition as the platform's STIX 2.1 converter writes it."""
    key = api_marking["definition_type"].lower()
    definition = re.sub(r"^(tlp|TLP):", "", api_marking["definition"])
    return {
        "id": api_marking["standard_id"],
        "spec_version": "2.1",
        "type": "marking-definition",
        "created": api_marking["created"],
        "modified": api_marking["modified"],
        "name": api_marking["definition"],
        "definition_type": key,
        "definition": {key: definition},
        "extensions": {
            OCTI_EXT: {
                "extension_type": "property-extension",
                "id": api_marking["id"],
                "type": "Marking-Definition",
                "created_at": api_marking["created"],
                "is_inferred": False,
                "order": api_marking["x_opencti_order"],
                "color": api_marking["x_opencti_color"],
            }
        },
    }


def observable_standard_id(entity_type: str, value: str) -> str:
    """The STIX id of an observable, as the platform computes it (stix2's deterministic ids)."""
    if entity_type not in OBSERVABLE_CLASSES:
        raise ValueError(f"no STIX id rule for {entity_type!r}: pass standard_id")
    return OBSERVABLE_CLASSES[entity_type](value=value).id


def _organization(name: str) -> dict[str, Any]:
    standard_id = Identity.generate_id(name, "organization")
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, standard_id)),
        "standard_id": standard_id,
        "entity_type": "Organization",
        "parent_types": ["Basic-Object", "Stix-Object", "Stix-Core-Object", "Stix-Domain-Object", "Identity"],
        "spec_version": "2.1",
        "identity_class": "organization",
        "name": name,
        "description": None,
        "roles": None,
        "contact_information": None,
        "x_opencti_aliases": None,
        "created": "2024-01-01T00:00:00.000Z",
        "modified": "2024-01-01T00:00:00.000Z",
        "objectLabel": [],
        "x_opencti_organization_type": None,
        "x_opencti_reliability": None,
    }


@lru_cache(maxsize=1)
def _jwks() -> str:
    """A JWK set with one RSA public key, as a JSON string (generated once per test session)."""
    numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_numbers()

    def b64(number: int) -> str:
        raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    key = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "opencti-fake", "n": b64(numbers.n)}
    key["e"] = b64(numbers.e)
    return json.dumps({"keys": [key]})


# -- records ---------------------------------------------------------------------------------------


@dataclass
class GraphQLCall:
    """One request the fake answered."""

    kind: str
    operation_name: str | None
    field: str
    subfield: str | None
    variables: dict[str, Any]
    headers: dict[str, str]
    time: float
    error: str | None = None


@dataclass
class Fault:
    """Answer `field` (optionally only `subfield`) with a GraphQL error (or, with `delay_seconds`, late but
    normally), `times` times (None: always)."""

    field: str
    subfield: str | None = None
    message: str = "Simulated platform error"
    name: str = "INTERNAL_SERVER_ERROR"
    times: int | None = 1
    http_status: int | None = None  # answer this HTTP status instead of a GraphQL error
    delay_seconds: float = 0  # not an error: answer normally, this many seconds late


@dataclass
class RegisteredConnector:
    """What a connector sent to `registerConnector`, and what happened to it since."""

    id: str
    input: dict[str, Any]
    registrations: int = 1
    registered_at: float = field(default_factory=time.time)
    state: str | None = None
    state_reset: bool = False  # "reset state" in the UI: the next ping leaves the state cleared
    pings: int = 0
    connector_info: dict[str, Any] | None = None
    deleted: bool = False


# -- the fake --------------------------------------------------------------------------------------


class FakeOpenCTI:
    """The fake platform: `start()`, `url`, `token`, entities, works, broker side, records; `stop()`."""

    def __init__(
        self,
        broker: BrokerAddress,
        *,
        token: str | None = None,
        version: str = PYCTI_VERSION,
        connector_user_id: str | None = OPENCTI_ADMIN_UUID,
        with_s3: bool = True,
        delete_queues_on_unregister: bool = True,
        host: str = "127.0.0.1",
        queue_type: str = "classic",
        broker_tls: bool = False,
        connector_confidence: int = 100,
    ) -> None:
        self.broker = broker
        self.connector_confidence = connector_confidence  # the connector user's confidence level (upserts)
        self.queue_type = queue_type  # the platform's RabbitMQ queue type: classic or quorum
        self.broker_tls = broker_tls  # hand out the broker's TLS port (`use_ssl: true`) to connectors
        self.token = token or str(uuid.uuid4())
        self.version = version
        self.connector_user_id = connector_user_id
        self.with_s3 = with_s3
        self.delete_queues_on_unregister = delete_queues_on_unregister
        self.calls: list[GraphQLCall] = []
        self.unexpected_calls: list[GraphQLCall] = []
        self.connectors: dict[str, RegisteredConnector] = {}
        self.entities: dict[str, dict[str, Any]] = {}  # standard_id -> API-shaped entity
        self.knowledge: dict[str, dict[str, Any]] = {}  # standard_id -> imported object (STIX, platform fields)
        self.confidences: dict[str, int] = {}  # standard_id -> the entity's confidence level (not exported here)
        self.resolves_to: dict[str, list[str]] = {}  # standard_id -> nested refs (resolves-to targets)
        self.works: dict[str, dict[str, Any]] = {}
        self.playbook_bundles: list[dict[str, Any]] = []
        self.api_bundles: list[dict[str, Any]] = []  # stixBundlePush (CONNECTOR_QUEUE_PROTOCOL=api)
        self.published: list[dict[str, Any]] = []  # every message published to a listen queue
        self.faults: list[Fault] = []
        self.down = False  # True: answer 503 to everything (platform unreachable)
        self._drained: dict[str, list[dict[str, Any]]] = {}  # push messages taken at unregistration
        self._condition = threading.Condition()
        self._server = ThreadingHTTPServer((host, 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The platform URL to give a connector (OPENCTI_URL); the API is at `url + '/graphql'`."""
        return f"http://{self._server.server_address[0]}:{self.port}"

    def start(self) -> FakeOpenCTI:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-opencti", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenCTI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- knowledge -------------------------------------------------------------------------------

    def add_entity(
        self,
        entity_type: str,
        value: str,
        markings: Iterable[str | Mapping[str, Any]] = (),
        *,
        entity_id: str | None = None,
        standard_id: str | None = None,
        score: int | None = 50,
        labels: Sequence[str] = (),
        created_by: str | None = None,
        description: str | None = None,
        organizations: Sequence[str] = (),
        resolves_to: Sequence[str] = (),
        confidence: int = 50,
    ) -> str:
        """Store an observable and return its standard id (what messages carry as `entity_id`).

        `entity_id` is the internal id (a random UUID by default); the standard id is the STIX id
        computed from the value. `markings`: TLP/PAP names or marking dicts (see `marking_definition`).
        `created_by`: an organization name. `organizations`: names of the organizations it is shared with.
        `resolves_to`: standard ids of observables it resolves to (nested refs, read by pycti's export).
        `confidence`: the entity's confidence level (an upsert by a less confident connector changes nothing).
        """
        standard_id = standard_id or observable_standard_id(entity_type, value)
        entity = self._new_entity(
            entity_id, standard_id, entity_type, OBSERVABLE_PARENT_TYPES, markings, labels, created_by, organizations
        )
        entity.update(
            observable_value=value,
            x_opencti_description=description,
            x_opencti_score=score,
            indicators={"edges": []},
            value=value,
        )
        return self._store(entity, confidence, resolves_to)

    def add_indicator(
        self,
        pattern: str,
        markings: Iterable[str | Mapping[str, Any]] = (),
        *,
        pattern_type: str = "stix",
        observable_values: Sequence[Mapping[str, Any]] | None = None,
        name: str | None = None,
        main_observable_type: str | None = None,
        entity_id: str | None = None,
        standard_id: str | None = None,
        score: int | None = 50,
        labels: Sequence[str] = (),
        created_by: str | None = None,
        organizations: Sequence[str] = (),
        valid_from: str | None = None,
        valid_until: str | None = None,
        confidence: int = 50,
    ) -> str:
        """Store an Indicator and return its standard id (pycti's id of its pattern, unless `standard_id`).

        `observable_values`: what the platform read from the pattern (`x_opencti_observable_values`, entries
        `{type, value, hashes}`); by default read from a STIX pattern as the platform does, none for other
        pattern types. `main_observable_type`: the first value's type by default. `valid_until`: 90 days
        after `valid_from` (now) by default. The other options are those of `add_entity`.
        """
        if observable_values is None:
            observable_values = pattern_observable_values(pattern) if pattern_type.lower() == "stix" else []
        values = [dict(entry) for entry in observable_values]
        stamp = now_iso()
        starts = valid_from or stamp
        ends = valid_until or (parse_iso(starts) + timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        entity = self._new_entity(
            entity_id,
            standard_id or Indicator.generate_id(pattern),
            "Indicator",
            INDICATOR_PARENT_TYPES,
            markings,
            labels,
            created_by,
            organizations,
        )
        entity.update(
            revoked=False,
            confidence=confidence,
            created=stamp,
            modified=stamp,
            pattern_type=pattern_type,
            pattern_version="2.1" if pattern_type.lower() == "stix" else None,
            pattern=pattern,
            name=name or pattern,
            description=None,
            indicator_types=[],
            valid_from=starts,
            valid_until=ends,
            x_opencti_score=score,
            x_opencti_detection=False,
            x_opencti_main_observable_type=main_observable_type or (values[0]["type"] if values else "Unknown"),
            x_opencti_observable_values=values,
            x_mitre_platforms=None,
            observables={"edges": []},
            killChainPhases=[],
        )
        return self._store(entity, confidence)

    def _new_entity(
        self,
        entity_id: str | None,
        standard_id: str,
        entity_type: str,
        parent_types: Sequence[str],
        markings: Iterable[str | Mapping[str, Any]],
        labels: Sequence[str],
        created_by: str | None,
        organizations: Sequence[str],
    ) -> dict[str, Any]:
        """The fields every stored entity has (API shape)."""
        stamp = now_iso()
        return {
            "id": entity_id or str(uuid.uuid4()),
            "standard_id": standard_id,
            "entity_type": entity_type,
            "parent_types": list(parent_types),
            "spec_version": "2.1",
            "created_at": stamp,
            "updated_at": stamp,
            "objectOrganization": [_organization(name) for name in organizations],
            "creators": [{"id": OPENCTI_ADMIN_UUID, "name": "admin"}],
            "createdBy": _organization(created_by) if created_by else None,
            "objectMarking": [marking_definition(marking) for marking in markings],
            "objectLabel": [self.label(label) for label in labels],
            "externalReferences": {"edges": []},
            "importFiles": {"edges": []},
        }

    def _store(self, entity: dict[str, Any], confidence: int, resolves_to: Sequence[str] = ()) -> str:
        standard_id = entity["standard_id"]
        with self._condition:
            self.entities[standard_id] = entity
            self.resolves_to[standard_id] = list(resolves_to)
            self.confidences[standard_id] = confidence
        return standard_id

    @staticmethod
    def label(value: str) -> dict[str, Any]:
        """A label in the API shape."""
        return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, value)), "value": value, "color": "#000000"}

    @staticmethod
    def tlp_name(marking_id: str) -> str | None:
        """The TLP name of a standard TLP marking id, None for other markings."""
        return next((name for name, (standard_id, _, _) in TLP_MARKINGS.items() if standard_id == marking_id), None)

    @contextlib.contextmanager
    def editing(self, any_id: str) -> Iterator[dict[str, Any]]:
        """The stored entity, to change under the platform's lock."""
        with self._condition:
            yield self._require_entity(any_id)

    def add_external_references(self, any_id: str, references: Iterable[Mapping[str, Any]]) -> None:
        """Add references to an entity as the platform's upsert does: by identity, never removing one (a known
        reference gets the newer description)."""
        with self._condition:
            edges = self._require_entity(any_id)["externalReferences"]["edges"]
            for reference in references:
                node = reference_node(reference)
                known = next(
                    (edge["node"] for edge in edges if edge["node"]["standard_id"] == node["standard_id"]), None
                )
                if known is None:
                    edges.append({"node": node})
                elif node["description"]:
                    known["description"] = node["description"]

    def external_references(self, any_id: str) -> list[dict[str, Any]]:
        """The external references of a stored entity (API shape)."""
        with self._condition:
            return [dict(edge["node"]) for edge in self._require_entity(any_id)["externalReferences"]["edges"]]

    def store_knowledge(self, stix_object: dict[str, Any]) -> None:
        """Keep an imported object (the first import of an id wins)."""
        with self._condition:
            self.knowledge.setdefault(stix_object["id"], stix_object)

    def knowledge_of(self, stix_type: str) -> list[dict[str, Any]]:
        """The imported objects of one STIX type."""
        with self._condition:
            return [o for o in self.knowledge.values() if o["type"] == stix_type]

    def import_pushed(self, connector_id: str, work: Mapping[str, Any], now: datetime | None = None) -> ImportReport:
        """Take a work's pushed bundles and import them as the platform's worker does (see `fake_worker`)."""
        bundles = self.take_pushed_bundles(connector_id, expected_count=work["expectations"])
        assert len(bundles) == work["expectations"], f"{len(bundles)} bundles for {work['expectations']} expected"
        return import_objects(self, unique_objects(bundles), now or datetime.now(UTC))

    def auto_enrich(self, standard_id: str) -> list[str]:
        """What the platform does on creation: an automatic enrichment by every registered auto connector whose
        scope holds the entity's type; their work ids."""
        entity_type = self._require_entity(standard_id)["entity_type"].lower()
        with self._condition:
            targets = [c.id for c in self.connectors.values() if not c.deleted and c.input.get("auto")]
            scopes = {c.id: c.input.get("scope") or [] for c in self.connectors.values()}
        work_ids = []
        for connector_id in targets:
            scope = scopes[connector_id]
            names = scope.split(",") if isinstance(scope, str) else scope
            if entity_type in {name.strip().lower() for name in names}:
                work_ids.append(self.publish_enrichment(connector_id, standard_id, mode="auto", trigger="create"))
        return work_ids

    def entity(self, any_id: str) -> dict[str, Any] | None:
        """The stored entity (API shape) by internal id or standard id, or None."""
        with self._condition:
            if any_id in self.entities:
                return self.entities[any_id]
            return next((e for e in self.entities.values() if e["id"] == any_id), None)

    def stix_entity(self, any_id: str) -> dict[str, Any]:
        """The entity as the platform's STIX 2.1 converter writes it (with the OpenCTI extensions)."""
        entity = self._require_entity(any_id)
        if entity["entity_type"] == "Indicator":
            return stix_indicator(entity, _octi_extension(entity))
        stix: dict[str, Any] = {
            "id": entity["standard_id"],
            "spec_version": "2.1",
            "type": entity["entity_type"].lower(),
            "value": entity["value"],
        }
        if entity["objectMarking"]:
            stix["object_marking_refs"] = [m["standard_id"] for m in entity["objectMarking"]]
        octi = _octi_extension(entity)
        sco: dict[str, Any] = {"extension_type": "property-extension", "score": entity["x_opencti_score"]}
        if entity["objectLabel"]:
            sco["labels"] = [label["value"] for label in entity["objectLabel"]]
        if entity["x_opencti_description"]:
            sco["description"] = entity["x_opencti_description"]
        if entity["createdBy"]:
            sco["created_by_ref"] = entity["createdBy"]["standard_id"]
        stix["extensions"] = {OCTI_EXT: octi, OCTI_SCO_EXT: sco}
        return stix

    def stix_objects(self, any_id: str) -> list[dict[str, Any]]:
        """The entity's STIX bundle objects as the platform sends them (`stix_bundle` resolution)."""
        entity = self._require_entity(any_id)
        return [self.stix_entity(any_id), *(stix_marking(m) for m in entity["objectMarking"])]

    # -- works -----------------------------------------------------------------------------------

    def create_work(
        self, connector_id: str | None, entity_id: str | None, work_id: str | None = None, *, automatic: bool = False
    ) -> str:
        """Record a work (the platform creates one per enrichment request, named after how it was asked)."""
        work_id = work_id or f"work_{connector_id}_{uuid.uuid4()}"
        name = f"Enrichment ({entity_id})" if automatic else "Manual enrichment"
        with self._condition:
            self.works.setdefault(work_id, _new_work(work_id, connector_id, entity_id, name))
        return work_id

    def wait_work_processed(self, work_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait (bounded) until the connector reported the work processed; return the work record."""

        def processed() -> bool:
            return bool(self.works.get(work_id, {}).get("processed"))

        if not self._wait(processed, timeout):
            raise TimeoutError(
                f"work {work_id} not processed within {timeout} s: {self.works.get(work_id)}; "
                f"recent calls: {[(c.field, c.subfield) for c in self.calls[-10:]]}"
            )
        with self._condition:
            return dict(self.works[work_id])

    def wait_playbook_step(self, execution_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait (bounded) for the `playbookStepExecution` of a playbook execution; return its record."""

        def find() -> dict[str, Any] | None:
            return next((p for p in self.playbook_bundles if p["execution_id"] == execution_id), None)

        if not self._wait(lambda: find() is not None, timeout):
            raise TimeoutError(f"no playbookStepExecution for execution {execution_id} within {timeout} s")
        with self._condition:
            found = find()
        assert found is not None
        return found

    def wait_registered(self, connector_id: str, timeout: float = 30.0) -> RegisteredConnector:
        """Wait (bounded) until `registerConnector` was called for this id."""
        if not self._wait(lambda: connector_id in self.connectors, timeout):
            raise TimeoutError(f"connector {connector_id} did not register within {timeout} s")
        return self.connectors[connector_id]

    def wait_calls(self, field_name: str, count: int = 1, timeout: float = 30.0) -> list[GraphQLCall]:
        """Wait (bounded) until `field_name` was called `count` times; return those calls."""
        if not self._wait(lambda: len(self.calls_for(field_name)) >= count, timeout):
            raise TimeoutError(f"{field_name} called {len(self.calls_for(field_name))} < {count} times")
        return self.calls_for(field_name)

    def calls_for(self, field_name: str, subfield: str | None = None) -> list[GraphQLCall]:
        """The recorded calls of one root field (and sub-field, e.g. workEdit / toProcessed)."""
        with self._condition:
            return [c for c in self.calls if c.field == field_name and (subfield is None or c.subfield == subfield)]

    def add_fault(self, fault: Fault) -> None:
        with self._condition:
            self.faults.append(fault)

    # -- broker side: the platform's part --------------------------------------------------------

    def declare_connector_queues(self, connector_id: str) -> None:
        """Declare what the platform declares at registration (idempotent)."""
        with self._channel() as channel:
            for exchange in (CONNECTOR_EXCHANGE, WORKER_EXCHANGE):
                channel.exchange_declare(exchange=exchange, exchange_type="direct", durable=True)
            for queue, exchange, routing in (
                (f"listen_{connector_id}", CONNECTOR_EXCHANGE, f"listen_routing_{connector_id}"),
                (f"push_{connector_id}", WORKER_EXCHANGE, f"push_routing_{connector_id}"),
            ):
                channel.queue_declare(queue=queue, durable=True, arguments={"x-queue-type": self.queue_type})
                channel.queue_bind(queue=queue, exchange=exchange, routing_key=routing)

    def delete_connector_queues(self, connector_id: str) -> None:
        """Delete the connector's queues (the platform does it on deleteConnector), keeping pushed bundles."""
        drained = self._drain(connector_id, timeout=0, expected_count=None, settle=0)
        with self._condition:
            self._drained.setdefault(connector_id, []).extend(drained)
        with self._channel() as channel:
            for queue in (f"listen_{connector_id}", f"push_{connector_id}"):
                channel.queue_delete(queue=queue)

    def queue_state(self, queue: str) -> tuple[int, int] | None:
        """(messages ready, consumers) of a queue, or None when it does not exist."""
        try:
            with self._channel() as channel:
                method = channel.queue_declare(queue=queue, passive=True).method
                return method.message_count, method.consumer_count
        except pika.exceptions.ChannelClosedByBroker:
            return None

    def publish_enrichment(
        self,
        connector_id: str,
        entity_id: str,
        *,
        work_id: str | None = None,
        with_stix_objects: bool = False,
        playbook: bool = False,
        mode: str = "manual",
        trigger: str | None = None,
        legacy: bool = False,
        bundle_with_markings: bool = False,
        extra_internal: Mapping[str, Any] | None = None,
    ) -> str:
        """Publish an enrichment request to `listen_<connector_id>` like the platform; return its work id.

        - default (`enrichment_resolution="none"`): `stix_entity` as a JSON string, `stix_objects: null`;
          the helper rebuilds both from the entity read.
        - `with_stix_objects=True` (`stix_bundle` resolution): `stix_objects` too, the entity and its
          marking definitions as a JSON string of a list.
        - `playbook=True`: like the platform's "Enrich through connector" step: `internal.playbook`,
          `work_id: null` (unless `work_id` is given), `applicant_id` the automation user, `mode: auto`,
          and an event carrying only `entity_id` and `bundle` (the entity alone, no markings; no
          `entity_type`, so the helper reads it through `stixCoreObject`). `bundle_with_markings=True`
          adds the marking definitions to that bundle (a later playbook step may have). Returns the work
          id when one was given, else the playbook `execution_id` (see `wait_playbook_step`).
        - `mode`: `manual` (a click: trigger `update`, work "Manual enrichment") or `auto` (auto-enrichment:
          trigger `create` unless `trigger` says `update`, work "Enrichment (<standard id>)").
        - `legacy=True`: an older platform's message: no `mode` or `trigger`, `applicant_id` the user who
          clicked (none for `mode="auto"`), and an event carrying only `entity_id`.
        - `extra_internal`: keys merged into `internal` (e.g. `draft_id`, `applicant_id`).
        """
        entity = self._require_entity(entity_id)
        standard_id = entity["standard_id"]
        if playbook:
            execution_id = str(uuid.uuid4())
            objects = self.stix_objects(standard_id) if bundle_with_markings else [self.stix_entity(standard_id)]
            message: dict[str, Any] = {
                "internal": {
                    "work_id": work_id,
                    "playbook": {
                        "event_id": f"{int(time.time() * 1000)}-0",
                        "execution_id": execution_id,
                        "playbook_id": str(uuid.uuid4()),
                        "data_instance_id": standard_id,
                        "step_id": str(uuid.uuid4()),
                        "previous_step_id": str(uuid.uuid4()),
                    },
                    "applicant_id": AUTOMATION_MANAGER_USER_UUID,
                    "trigger": "create",
                    "mode": "auto",
                },
                "event": {
                    "entity_id": standard_id,
                    "bundle": {"id": str(uuid.uuid4()), "spec_version": "2.1", "type": "bundle", "objects": objects},
                },
            }
            if work_id is not None:
                self.create_work(connector_id, standard_id, work_id)
            reference = work_id or execution_id
        elif legacy:
            work_id = self.create_work(connector_id, standard_id, work_id, automatic=mode == "auto")
            applicant_id = OPENCTI_ADMIN_UUID if mode == "manual" else None
            message = {
                "internal": {"work_id": work_id, "applicant_id": applicant_id},
                "event": {"entity_id": standard_id},
            }
            reference = work_id
        else:
            work_id = self.create_work(connector_id, standard_id, work_id, automatic=mode == "auto")
            message = {
                "internal": {
                    "work_id": work_id,
                    "applicant_id": None,
                    "draft_id": None,
                    "mode": mode,
                    "trigger": trigger or ("create" if mode == "auto" else "update"),
                },
                "event": {
                    "event_type": "INTERNAL_ENRICHMENT",
                    "entity_id": standard_id,
                    "entity_type": entity["entity_type"],
                    "stix_entity": json.dumps(self.stix_entity(standard_id)),
                    "stix_objects": json.dumps(self.stix_objects(standard_id)) if with_stix_objects else None,
                },
            }
            reference = work_id
        if extra_internal:
            message["internal"].update(extra_internal)
        self.publish_raw(connector_id, message)
        return reference

    def publish_raw(self, connector_id: str, message: Mapping[str, Any] | bytes) -> None:
        """Publish any body to the connector's listen queue (persistent, mandatory: fails if unroutable)."""
        body = message if isinstance(message, bytes) else json.dumps(message).encode("utf-8")
        with self._channel() as channel:
            channel.confirm_delivery()
            channel.basic_publish(
                exchange=CONNECTOR_EXCHANGE,
                routing_key=f"listen_routing_{connector_id}",
                body=body,
                properties=pika.BasicProperties(delivery_mode=2, content_encoding="utf-8"),
                mandatory=True,
            )
        with self._condition:
            self.published.append({"connector_id": connector_id, "message": message, "time": time.time()})

    def take_pushed_messages(
        self, connector_id: str, timeout: float = 10.0, expected_count: int | None = None
    ) -> list[dict[str, Any]]:
        """Drain `push_<id>`: the raw pushed messages (`bundle_type`, `work_id`, `content`, ...), each with
        `_properties`, the AMQP properties a worker would see (`delivery_mode`, `content_encoding`, ...).

        With `expected_count`, wait (bounded) until that many arrived. Without, wait (bounded) for a
        first one, then take what follows until the queue stays empty for half a second.
        """
        with self._condition:
            taken = self._drained.pop(connector_id, [])
        if expected_count is not None and len(taken) >= expected_count:
            return taken
        remaining = None if expected_count is None else expected_count - len(taken)
        return taken + self._drain(connector_id, timeout=0 if taken else timeout, expected_count=remaining)

    def take_pushed_bundles(
        self, connector_id: str, timeout: float = 10.0, expected_count: int | None = None
    ) -> list[dict[str, Any]]:
        """Like `take_pushed_messages`, but the decoded bundles (base64 `content`, JSON)."""
        return [decode_bundle(m) for m in self.take_pushed_messages(connector_id, timeout, expected_count)]

    # -- internals -------------------------------------------------------------------------------

    def _require_entity(self, any_id: str) -> dict[str, Any]:
        entity = self.entity(any_id)
        if entity is None:
            raise KeyError(f"no entity {any_id!r} in the fake platform (add_entity first)")
        return entity

    def _wait(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._condition:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(min(left, 0.5))
            return True

    def _channel(self) -> _Channel:
        return _Channel(self.broker)

    def _drain(
        self, connector_id: str, *, timeout: float, expected_count: int | None, settle: float = 0.5
    ) -> list[dict[str, Any]]:
        taken: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        last_seen: float | None = None
        try:
            with self._channel() as channel:
                while True:
                    method, properties, body = channel.basic_get(queue=f"push_{connector_id}", auto_ack=True)
                    if method is not None:
                        message = json.loads(body)
                        message["_properties"] = {
                            "delivery_mode": properties.delivery_mode,
                            "content_encoding": properties.content_encoding,
                            "content_type": properties.content_type,
                            "headers": properties.headers,
                        }
                        taken.append(message)
                        last_seen = time.monotonic()
                        if expected_count is not None and len(taken) >= expected_count:
                            return taken
                        continue
                    now = time.monotonic()
                    if expected_count is None and (
                        (last_seen is not None and now - last_seen >= settle) or (last_seen is None and now >= deadline)
                    ):
                        return taken
                    if expected_count is not None and now >= deadline:
                        return taken
                    time.sleep(0.05)
        except pika.exceptions.ChannelClosedByBroker:  # the queue does not exist (any more)
            return taken

    def _notify(self) -> None:
        with self._condition:
            self._condition.notify_all()

    # -- GraphQL ---------------------------------------------------------------------------------

    def handle_graphql(self, document: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """Answer one GraphQL request: (HTTP status, JSON body). Every call is recorded."""
        query = document.get("query") or ""
        variables = dict(document.get("variables") or {})
        kept = {k: v for k, v in headers.items() if k.lower().startswith(("opencti-", "authorization", "user-agent"))}
        try:
            operation = parse_operation(query)
        except ValueError as error:
            return 200, _error(f"Syntax Error: {error}", "GRAPHQL_PARSE_FAILED")
        call = GraphQLCall(
            operation.kind, operation.name, operation.field, operation.subfield, variables, kept, time.time()
        )
        with self._condition:
            self.calls.append(call)
            self._condition.notify_all()
        if headers.get("Authorization") != f"Bearer {self.token}":
            call.error = "AUTH_REQUIRED"
            return 200, _error("You must be logged in to do this.", "AUTH_REQUIRED")
        fault = self._take_fault(operation)
        if fault is not None and fault.delay_seconds:
            time.sleep(fault.delay_seconds)  # then answered normally
        elif fault is not None:
            call.error = fault.name
            if fault.http_status is not None:
                return fault.http_status, {"message": fault.message}
            return 200, _error(fault.message, fault.name)
        handler = getattr(self, f"_gql_{operation.field}", None)
        if handler is None:
            with self._condition:
                self.unexpected_calls.append(call)
            return 200, {"data": {operation.field: None}}
        try:
            data = handler(variables, operation)
        except Exception as error:  # answered like the platform: a GraphQL error
            call.error = repr(error)
            return 200, _error(str(error), "INTERNAL_SERVER_ERROR")
        finally:
            self._notify()
        return 200, {"data": {operation.field: data}}

    def _take_fault(self, operation: Operation) -> Fault | None:
        with self._condition:
            for fault in self.faults:
                if fault.field == operation.field and fault.subfield in (None, operation.subfield):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def _gql_about(self, variables: dict[str, Any], operation: Operation) -> dict[str, Any]:
        return {"version": self.version}

    def _gql_registerConnector(self, variables: dict[str, Any], operation: Operation) -> dict[str, Any]:
        connector_input = dict(variables.get("input") or {})
        connector_id = connector_input["id"]
        self.declare_connector_queues(connector_id)
        with self._condition:
            known = self.connectors.get(connector_id)
            if known is None:
                known = self.connectors[connector_id] = RegisteredConnector(connector_id, connector_input)
            else:
                known.input, known.deleted = connector_input, False
                known.registrations += 1
                known.registered_at = time.time()
            state = known.state
        config: dict[str, Any] = {
            "connection": {
                "host": self.broker.host,
                "vhost": self.broker.vhost,
                "use_ssl": self.broker_tls,
                "port": self.broker.tls_port if self.broker_tls else self.broker.port,
                "user": self.broker.user,
                "pass": self.broker.password,
            },
            "listen": f"listen_{connector_id}",
            "listen_routing": f"listen_routing_{connector_id}",
            "listen_exchange": CONNECTOR_EXCHANGE,
            "push": f"push_{connector_id}",
            "push_routing": f"push_routing_{connector_id}",
            "push_exchange": WORKER_EXCHANGE,
        }
        if self.with_s3:
            config["s3"] = {
                "endpoint": "127.0.0.1",
                "port": 9000,
                "use_ssl": False,
                "bucket_name": "opencti-bucket",
                "bucket_region": "us-east-1",
                "access_key": "fake-access-key",
                "secret_key": "fake-secret-key",
            }
        return {
            "id": connector_id,
            "connector_state": state,
            "jwks": _jwks(),
            "config": config,
            "connector_user_id": self.connector_user_id,
        }

    def _gql_pingConnector(self, variables: dict[str, Any], operation: Operation) -> dict[str, Any]:
        connector_id = variables.get("id")
        state = variables.get("state")
        with self._condition:
            known = self.connectors.get(connector_id)
            if known is not None:
                known.pings += 1
                if known.state_reset:  # as the platform: this ping's state is dropped, once
                    known.state_reset = False
                else:
                    known.state = state
                state = known.state
                known.connector_info = variables.get("connectorInfo")
        info = variables.get("connectorInfo") or {}
        return {
            "id": connector_id,
            "connector_state": state,
            "connector_info": {
                key: info.get(key)
                for key in (
                    "run_and_terminate",
                    "buffering",
                    "queue_threshold",
                    "queue_messages_size",
                    "next_run_datetime",
                    "last_run_datetime",
                )
            },
        }

    def _gql_connector(self, variables: dict[str, Any], operation: Operation) -> dict[str, Any] | None:
        with self._condition:
            known = self.connectors.get(variables.get("id"))
            if known is None or known.deleted:
                return None
            return {"id": known.id, "name": known.input.get("name"), "connector_state": known.state}

    def reset_state(self, connector_id: str) -> None:
        """What "reset state" in the UI does: the state is cleared, and the next ping does not restore it."""
        with self._condition:
            known = self.connectors[connector_id]
            known.state, known.state_reset = None, True

    def connector_state(self, connector_id: str) -> dict[str, Any] | None:
        """The connector's state as the platform keeps it (decoded), None when it has none."""
        with self._condition:
            state = self.connectors[connector_id].state
        return json.loads(state) if state else None

    def _gql_deleteConnector(self, variables: dict[str, Any], operation: Operation) -> str:
        connector_id = variables["id"]
        with self._condition:
            known = self.connectors.get(connector_id)
            if known is not None:
                known.deleted = True
        if self.delete_queues_on_unregister:
            self.delete_connector_queues(connector_id)
        return connector_id

    def _gql_stixCyberObservable(self, variables: dict[str, Any], operation: Operation) -> dict[str, Any] | None:
        entity = self.entity(variables.get("id") or "")
        return copy.deepcopy(entity) if entity is not None else None

    _gql_indicator = _gql_stixCyberObservable  # the helper's reader of an Indicator

    def _gql_stixCoreObject(self, variables: dict[str, Any], operation: Operation) -> dict[str, Any] | None:
        """The helper's reader when no entity_type (playbooks): pycti's query asks for no observable values."""
        entity = self._gql_stixCyberObservable(variables, operation)
        if entity is not None:
            entity.pop("x_opencti_observable_values", None)
        return entity

    def _gql_stixNestedRefRelationships(self, variables: dict[str, Any], operation: Operation) -> dict[str, Any]:
        entity = self.entity(str(variables.get("fromId") or "")) or {}
        edges = [
            {
                "node": {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{entity['id']}-{target}")),
                    "entity_type": "resolves-to",
                    "relationship_type": "resolves-to",
                    "from": {"id": entity["id"], "standard_id": entity["standard_id"]},
                    "to": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, target)), "standard_id": target},
                }
            }
            for target in self.resolves_to.get(entity.get("standard_id", ""), [])
        ]
        return {"edges": edges, "pageInfo": dict(EMPTY_PAGE_INFO)}

    def _gql_stixCoreRelationships(self, variables: dict[str, Any], operation: Operation) -> dict[str, Any]:
        return {"edges": [], "pageInfo": dict(EMPTY_PAGE_INFO)}

    _gql_stixSightingRelationships = _gql_stixCoreRelationships
    _gql_stixObjectOrStixRelationships = _gql_stixCoreRelationships

    def _gql_workEdit(self, variables: dict[str, Any], operation: Operation) -> dict[str, Any]:
        work_id = variables["id"]
        action = operation.subfield or ""
        with self._condition:
            work = self.works.setdefault(work_id, _new_work(work_id, None, None))
            work["history"].append((action, {k: v for k, v in variables.items() if k != "id"}, time.time()))
            if action == "toReceived":
                work["received"] = True
                work["received_message"] = variables.get("message")
            elif action == "addExpectations":
                work["expectations"] += int(variables.get("expectations") or 0)
            elif action == "toProcessed":
                work["processed"] = True
                work["message"] = variables.get("message")
                work["in_error"] = bool(variables.get("inError"))
                work["processed_at"] = time.time()
            elif action == "ping":
                work["pings"] += 1
            elif action == "reportExpectation":
                work["reported_expectations"] += 1
                if variables.get("error"):
                    work["errors"].append(variables["error"])
        return {action: work_id}

    def _gql_work(self, variables: dict[str, Any], operation: Operation) -> dict[str, Any] | None:
        with self._condition:
            work = self.works.get(variables.get("id") or "")
            if work is None:
                return None
            return {
                "id": work["id"],
                "name": work["name"],
                "user": {"name": "admin"},
                "timestamp": now_iso(),
                "status": "complete" if work["processed"] else "progress",
                "event_source_id": work["entity_id"],
                "received_time": None,
                "processed_time": None,
                "completed_time": None,
                "tracking": {"import_expected_number": work["expectations"], "import_processed_number": 0},
                "messages": [],
                "errors": [],
            }

    def _gql_playbookStepExecution(self, variables: dict[str, Any], operation: Operation) -> bool:
        record = {key: value for key, value in variables.items() if key not in ("bundle", "previous_bundle")}
        record["bundle"] = json.loads(variables["bundle"])
        record["previous_bundle"] = json.loads(variables["previous_bundle"])
        record["time"] = time.time()
        with self._condition:
            self.playbook_bundles.append(record)
        return True

    def _gql_stixBundlePush(self, variables: dict[str, Any], operation: Operation) -> bool:
        with self._condition:
            self.api_bundles.append({**variables, "time": time.time()})
        return True


def _octi_extension(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenCTI extension's fields every entity has in the platform's STIX export."""
    octi = {
        "extension_type": "property-extension",
        "id": entity["id"],
        "type": entity["entity_type"],
        "created_at": entity["created_at"],
        "updated_at": entity["updated_at"],
        "is_inferred": False,
        "creator_ids": [c["id"] for c in entity["creators"]],
    }
    if entity["objectOrganization"]:
        octi["granted_refs"] = [organization["standard_id"] for organization in entity["objectOrganization"]]
    return octi


def parse_iso(text: str) -> datetime:
    """A platform timestamp as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def decode_bundle(message: Mapping[str, Any]) -> dict[str, Any]:
    """The bundle inside a pushed message (`content` is base64 of the bundle JSON)."""
    return json.loads(base64.b64decode(message["content"]).decode("utf-8"))


def _new_work(work_id: str, connector_id: str | None, entity_id: str | None, name: str = "") -> dict[str, Any]:
    return {
        "id": work_id,
        "name": name,
        "connector_id": connector_id,
        "entity_id": entity_id,
        "created_at": time.time(),
        "received": False,
        "received_message": None,
        "expectations": 0,
        "reported_expectations": 0,
        "errors": [],
        "processed": False,
        "message": None,
        "in_error": None,
        "processed_at": None,
        "pings": 0,
        "history": [],
    }


def _error(message: str, name: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "name": name, "extensions": {"code": name}}], "data": None}


class _Channel:
    """A short-lived blocking connection and channel, as a context manager."""

    def __init__(self, broker: BrokerAddress) -> None:
        self.broker = broker
        self.connection: pika.BlockingConnection | None = None

    def __enter__(self) -> Any:
        parameters = pika.ConnectionParameters(
            host=self.broker.host,
            port=self.broker.port,
            virtual_host=self.broker.vhost,
            credentials=pika.PlainCredentials(self.broker.user, self.broker.password),
            connection_attempts=1,
            socket_timeout=5,
            blocked_connection_timeout=10,
        )
        self.connection = pika.BlockingConnection(parameters)
        return self.connection.channel()

    def __exit__(self, *exc_info: object) -> None:
        if self.connection is not None and self.connection.is_open:
            self.connection.close()


def _handler_for(fake: FakeOpenCTI) -> type[BaseHTTPRequestHandler]:
    class Handler(_GraphQLHandler):
        platform = fake

    return Handler


class _GraphQLHandler(BaseHTTPRequestHandler):
    platform: FakeOpenCTI
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the records
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.platform.down:
            self._send(503, {"message": "Service Unavailable"})
            return
        if self.path.split("?")[0].rstrip("/") != "/graphql":
            self._send(404, {"message": "Not Found"})
            return
        try:
            document = json.loads(raw)
        except ValueError:
            self._send(400, {"errors": [{"message": "Invalid JSON body"}]})
            return
        status, body = self.platform.handle_graphql(document, dict(self.headers.items()))
        self._send(status, body)

    def do_GET(self) -> None:
        self._send(503 if self.platform.down else 404, {"message": "Not Found"})

    def _send(self, status: int, document: Any) -> None:
        body = json.dumps(document).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
