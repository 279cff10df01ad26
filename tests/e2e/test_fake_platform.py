"""The fake platform itself, checked with pycti's real API client and helper (no project connector)."""

import base64
import copy
import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from jwt import PyJWKSet
from pycti import OpenCTIApiClient, OpenCTIConnector, OpenCTIConnectorHelper

from . import broker
from .broker import RabbitMQ
from .fake_opencti import (
    AUTOMATION_MANAGER_USER_UUID,
    CONNECTOR_EXCHANGE,
    TLP_MARKINGS,
    WORKER_EXCHANGE,
    FakeOpenCTI,
    Fault,
    parse_operation,
)

pytestmark = pytest.mark.e2e

STATEMENT = {"definition_type": "statement", "definition": "Copyright Example Corp"}


@pytest.fixture
def client(fake_opencti: FakeOpenCTI) -> OpenCTIApiClient:
    """pycti's API client against the fake (its constructor runs the `about` health check)."""
    return OpenCTIApiClient(fake_opencti.url, fake_opencti.token, log_level="error")


@pytest.fixture
def registered(client: OpenCTIApiClient) -> str:
    """A connector id registered through pycti's real `registerConnector` call."""
    connector_id = str(uuid.uuid4())
    client.connector.register(_connector(connector_id))
    return connector_id


def _connector(connector_id: str) -> OpenCTIConnector:
    return OpenCTIConnector(
        connector_id=connector_id,
        connector_name="Fake test",
        connector_type="INTERNAL_ENRICHMENT",
        scope="IPv4-Addr,Domain-Name",
        auto=False,
        only_contextual=False,
        playbook_compatible=True,
        auto_update=False,
        enrichment_resolution="none",
    )


def _get_one(rabbitmq: RabbitMQ, queue: str) -> dict:
    connection = rabbitmq.connect()
    try:
        method, properties, body = connection.channel().basic_get(queue=queue, auto_ack=True)
    finally:
        connection.close()
    assert method is not None, f"no message on {queue}"
    assert properties.delivery_mode == 2
    return json.loads(body)


def test_parse_operation_reads_what_pycti_sends() -> None:
    operation = parse_operation(
        "mutation workToProcessed($id: ID!, $message: String, $inError: Boolean) {\n"
        "  workEdit(id: $id) { toProcessed (message: $message, inError: $inError) } }"
    )
    assert (operation.kind, operation.name, operation.field, operation.subfield) == (
        "mutation",
        "workToProcessed",
        "workEdit",
        "toProcessed",
    )
    assert parse_operation("query healthCheck { about { version } }").field == "about"
    assert parse_operation('{ renamed: stixCoreObject(id: "x") { id } }').field == "stixCoreObject"


def test_missing_rabbitmq_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(broker, "RABBITMQ_SERVER", tmp_path / "absent")
    with pytest.raises(RuntimeError, match="apt-get install -y rabbitmq-server"):
        RabbitMQ().start(tmp_path)


def test_wrong_token_makes_the_client_fail(fake_opencti: FakeOpenCTI) -> None:
    with pytest.raises(ValueError, match="not reachable"):
        OpenCTIApiClient(fake_opencti.url, "not-the-token", log_level="error")
    assert fake_opencti.calls_for("about")[0].error == "AUTH_REQUIRED"


def test_registration_declares_the_queues_and_answers_what_the_helper_needs(
    fake_opencti: FakeOpenCTI, client: OpenCTIApiClient
) -> None:
    connector_id = str(uuid.uuid4())
    answer = client.connector.register(_connector(connector_id))

    assert answer["id"] == connector_id
    config = answer["config"]
    assert set(config["connection"]) == {"host", "vhost", "use_ssl", "port", "user", "pass"}
    assert (config["listen"], config["listen_exchange"]) == (f"listen_{connector_id}", CONNECTOR_EXCHANGE)
    assert (config["push"], config["push_routing"]) == (f"push_{connector_id}", f"push_routing_{connector_id}")
    assert config["push_exchange"] == WORKER_EXCHANGE
    assert isinstance(config["s3"], dict)
    assert len(PyJWKSet.from_json(answer["jwks"]).keys) == 1
    assert fake_opencti.queue_state(f"listen_{connector_id}") == (0, 0)
    assert fake_opencti.queue_state(f"push_{connector_id}") == (0, 0)
    registered = fake_opencti.connectors[connector_id]
    assert registered.input["scope"] == ["IPv4-Addr", "Domain-Name"]
    assert registered.input["playbook_compatible"] is True

    ping = client.connector.ping(connector_id, {"last_run": 1}, {"buffering": False})
    assert json.loads(ping["connector_state"]) == {"last_run": 1}
    assert fake_opencti.connectors[connector_id].pings == 1

    client.connector.unregister(connector_id)
    assert fake_opencti.connectors[connector_id].deleted
    assert fake_opencti.queue_state(f"listen_{connector_id}") is None
    assert fake_opencti.unexpected_calls == []


def test_entity_read_has_the_api_shape_pycti_exports(fake_opencti: FakeOpenCTI, client: OpenCTIApiClient) -> None:
    standard_id = fake_opencti.add_entity(
        "IPv4-Addr", "198.51.100.7", ["TLP:AMBER+STRICT", "PAP:GREEN", STATEMENT], labels=["c2"], created_by="ACME"
    )
    internal_id = fake_opencti.entity(standard_id)["id"]

    by_internal = client.stix_cyber_observable.read(id=internal_id, withFiles=True)
    entity = client.stix_cyber_observable.read(id=standard_id, withFiles=True)
    assert by_internal == entity
    assert entity["standard_id"] == standard_id and entity["observable_value"] == "198.51.100.7"
    assert [m["definition"] for m in entity["objectMarking"]] == [
        "TLP:AMBER+STRICT",
        "PAP:GREEN",
        STATEMENT["definition"],
    ]
    assert entity["objectMarking"][0]["standard_id"] == TLP_MARKINGS["TLP:AMBER+STRICT"][0]
    assert entity["objectLabel"][0]["value"] == "c2" and entity["createdBy"]["name"] == "ACME"

    objects = client.stix2.prepare_export(entity=client.stix2.generate_export(copy.copy(entity)))
    by_type = {stix["type"]: stix for stix in objects}
    assert by_type["ipv4-addr"]["id"] == standard_id
    assert by_type["ipv4-addr"]["x_opencti_labels"] == ["c2"]
    assert by_type["identity"]["name"] == "ACME"
    markings = [stix for stix in objects if stix["type"] == "marking-definition"]
    assert {m["name"] for m in markings} == {"TLP:AMBER+STRICT", "PAP:GREEN", STATEMENT["definition"]}
    assert fake_opencti.calls_for("stixNestedRefRelationships")
    assert client.stix_cyber_observable.read(id="ipv4-addr--00000000-0000-5000-8000-000000000000") is None


def test_publish_enrichment_puts_platform_shaped_messages_on_the_listen_queue(
    fake_opencti: FakeOpenCTI, rabbitmq: RabbitMQ, registered: str
) -> None:
    standard_id = fake_opencti.add_entity("Domain-Name", "c2.example.org", ["TLP:GREEN"])
    queue = f"listen_{registered}"

    work_id = fake_opencti.publish_enrichment(registered, standard_id)
    message = _get_one(rabbitmq, queue)
    assert message["internal"] == {
        "work_id": work_id,
        "applicant_id": None,
        "draft_id": None,
        "mode": "manual",
        "trigger": "update",
    }
    event = message["event"]
    assert (event["event_type"], event["entity_id"], event["entity_type"]) == (
        "INTERNAL_ENRICHMENT",
        standard_id,
        "Domain-Name",
    )
    assert json.loads(event["stix_entity"])["id"] == standard_id and event["stix_objects"] is None
    assert fake_opencti.works[work_id]["processed"] is False

    fake_opencti.publish_enrichment(registered, standard_id, with_stix_objects=True, mode="auto")
    message = _get_one(rabbitmq, queue)
    objects = json.loads(message["event"]["stix_objects"])
    assert [o["type"] for o in objects] == ["domain-name", "marking-definition"]
    assert message["internal"]["mode"] == "auto"

    execution_id = fake_opencti.publish_enrichment(registered, standard_id, playbook=True)
    message = _get_one(rabbitmq, queue)
    assert message["internal"]["work_id"] is None
    assert message["internal"]["applicant_id"] == AUTOMATION_MANAGER_USER_UUID
    assert message["internal"]["playbook"]["execution_id"] == execution_id
    assert set(message["event"]) == {"entity_id", "bundle"}
    assert [o["id"] for o in message["event"]["bundle"]["objects"]] == [standard_id]

    fake_opencti.publish_enrichment(registered, standard_id, playbook=True, bundle_with_markings=True)
    objects = _get_one(rabbitmq, queue)["event"]["bundle"]["objects"]
    assert [o["id"] for o in objects] == [standard_id, TLP_MARKINGS["TLP:GREEN"][0]]


def test_take_pushed_bundles_decodes_what_a_connector_pushes(
    fake_opencti: FakeOpenCTI, rabbitmq: RabbitMQ, registered: str
) -> None:
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": []}
    connection = rabbitmq.connect()
    try:
        for sequence in (1, 2):
            message = {
                "bundle_type": "QUEUE_BUNDLE",
                "action_sequence": sequence,
                "content": base64.b64encode(json.dumps(bundle).encode()).decode(),
                "work_id": "work_x",
            }
            connection.channel().basic_publish(
                exchange=WORKER_EXCHANGE,
                routing_key=f"push_routing_{registered}",
                body=json.dumps(message),
                properties=pika.BasicProperties(delivery_mode=2),
            )
    finally:
        connection.close()

    assert fake_opencti.take_pushed_bundles(registered, timeout=5, expected_count=2) == [bundle, bundle]
    started = time.monotonic()
    assert fake_opencti.take_pushed_bundles(registered, timeout=0.5) == []
    assert time.monotonic() - started < 3


def test_unregistration_deletes_the_queues_but_keeps_pushed_bundles(
    fake_opencti: FakeOpenCTI, rabbitmq: RabbitMQ, client: OpenCTIApiClient, registered: str
) -> None:
    content = base64.b64encode(b'{"type": "bundle", "id": "bundle--1", "objects": []}').decode()
    connection = rabbitmq.connect()
    try:
        connection.channel().basic_publish(
            exchange=WORKER_EXCHANGE, routing_key=f"push_routing_{registered}", body=json.dumps({"content": content})
        )
    finally:
        connection.close()
    client.connector.unregister(registered)
    assert fake_opencti.queue_state(f"push_{registered}") is None
    assert fake_opencti.take_pushed_bundles(registered, timeout=1) == [
        {"type": "bundle", "id": "bundle--1", "objects": []}
    ]


def test_faults_and_unexpected_calls_are_answered_and_recorded(
    fake_opencti: FakeOpenCTI, client: OpenCTIApiClient
) -> None:
    fake_opencti.add_fault(Fault("workEdit", "toProcessed", message="boom"))
    with pytest.raises(ValueError, match="boom"):
        client.work.to_processed("work_1", "done")
    client.work.to_processed("work_1", "done")  # the fault was for one call
    assert fake_opencti.works["work_1"]["message"] == "done"

    assert client.query("query { somethingElse { id } }") == {"data": {"somethingElse": None}}
    assert [call.field for call in fake_opencti.unexpected_calls] == ["somethingElse"]


# -- the real helper, in this process ------------------------------------------------------------


@pytest.fixture
def echo_helper(helper_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[dict]]]:
    """A real helper listening in a thread, echoing `stix_objects` back; stopped cleanly after the test."""
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # the helper replaces it: restored at teardown
    helper = OpenCTIConnectorHelper({}, playbook_compatible=True)
    received: list[dict] = []

    def callback(data: dict) -> str:
        received.append(data)
        helper.send_stix2_bundle(helper.stix2_create_bundle(data["stix_objects"]), cleanup_inconsistent_bundle=True)
        return f"echoed {len(data['stix_objects'])}"

    listener = threading.Thread(target=helper.listen, args=(callback,), daemon=True)
    listener.start()
    try:
        yield helper_env, received
    finally:
        queue = helper.listen_queue
        if queue is not None:
            queue.exit_event.set()
            if queue.pika_connection is not None and queue.pika_connection.is_open:
                queue.pika_connection.add_callback_threadsafe(queue.channel.stop_consuming)
        listener.join(timeout=15)
        helper.stop()


@pytest.mark.parametrize("mode", ["rebuilt", "stix_objects", "playbook"])
def test_the_real_helper_processes_a_message_end_to_end(
    fake_opencti: FakeOpenCTI, echo_helper: tuple[str, list[dict]], mode: str
) -> None:
    connector_id, received = echo_helper
    standard_id = fake_opencti.add_entity("IPv4-Addr", "203.0.113.9", ["TLP:GREEN"])
    fake_opencti.wait_registered(connector_id, timeout=10)
    deadline = time.monotonic() + 15
    while (fake_opencti.queue_state(f"listen_{connector_id}") or (0, 0))[1] < 1:
        assert time.monotonic() < deadline, "the helper never consumed its listen queue"
        time.sleep(0.1)

    if mode == "playbook":
        execution_id = fake_opencti.publish_enrichment(connector_id, standard_id, playbook=True)
        step = fake_opencti.wait_playbook_step(execution_id, timeout=20)
        assert [o["id"] for o in step["bundle"]["objects"]] == [standard_id]
        assert step["data_instance_id"] == standard_id
        assert fake_opencti.calls_for("stixCoreObject")  # no entity_type in a playbook message
        assert fake_opencti.take_pushed_bundles(connector_id, timeout=0.5) == []
    else:
        work_id = fake_opencti.publish_enrichment(connector_id, standard_id, with_stix_objects=mode == "stix_objects")
        work = fake_opencti.wait_work_processed(work_id, timeout=20)
        assert work["received"] and not work["in_error"]
        assert work["message"] == "echoed 2" and work["expectations"] == 2
        bundles = fake_opencti.take_pushed_bundles(connector_id, timeout=10, expected_count=2)
        pushed = {stix["id"] for bundle in bundles for stix in bundle["objects"]}
        assert pushed == {standard_id, TLP_MARKINGS["TLP:GREEN"][0]}
    assert received[0]["enrichment_entity"]["objectMarking"][0]["definition"] == "TLP:GREEN"
    assert received[0]["stix_entity"]["id"] == standard_id
    assert fake_opencti.unexpected_calls == []
