"""Pushing a bundle through the real helper and broker: pycti's own messages, in transactions."""

import json
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace

import pika.exceptions
import pytest
from pycti import OpenCTIConnectorHelper

from malbeacon_connector.malbeacon.client import client_from_settings
from malbeacon_connector.malbeacon.records import parse_records
from malbeacon_connector.malbeacon.simulator import load_sample_data
from malbeacon_connector.opencti import push
from malbeacon_connector.opencti.connector import MalbeaconConnector, WorkFailed
from malbeacon_connector.pipeline import entity_for_value
from malbeacon_connector.settings import Settings, settings_from
from malbeacon_connector.stix.bundle import make_bundle, merge_objects
from malbeacon_connector.stix.convert import convert
from malbeacon_connector.stix.models import ConversionOptions, Findings, Lookup
from malbeacon_connector.tlp import MARKING_DEFINITIONS

from .broker import free_ports
from .fake_opencti import FakeOpenCTI, Fault, decode_bundle


@pytest.fixture
def helper(helper_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenCTIConnectorHelper]:
    """A real helper, registered with the fake platform (not listening), as in a message's callback."""
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # the helper replaces it: restored at teardown
    helper = OpenCTIConnectorHelper({})
    helper.draft_id = ""  # as the listener sets it for a message without a draft
    try:
        yield helper
    finally:
        helper.stop()


def sample_objects() -> list[dict]:
    """A real enrichment's objects: a C2 address of the sample data, its TLP marking and what was found."""
    value = "203.0.113.7"
    entity = entity_for_value(value, "IPv4-Addr", "TLP:GREEN")
    lookups = [Lookup("c2", parse_records(load_sample_data()["c2"][value]).records)]
    objects = convert([Findings(entity, lookups)], ConversionOptions(), datetime.now(UTC)).objects
    marking = MARKING_DEFINITIONS["TLP:GREEN"]
    return merge_objects([marking, entity.stix_object], objects)


def pushed(platform: FakeOpenCTI, connector_id: str, work_id: str) -> list[dict]:
    """The messages pushed for a work, content decoded, without the pieces' random bundle ids."""
    count = platform.works[work_id]["expectations"]
    messages = platform.take_pushed_messages(connector_id, timeout=20, expected_count=count)
    assert len(messages) == count
    decoded = []
    for message in messages:
        content = decode_bundle(message)
        assert content.pop("id").startswith("bundle--")
        decoded.append({**message, "content": content})
    return sorted(decoded, key=lambda message: message["action_sequence"])


@pytest.mark.parametrize(
    "fake_opencti",
    [{}, {"queue_type": "quorum"}, {"broker_tls": True}],
    ids=["classic queues", "quorum queues", "broker over TLS"],
    indirect=True,
)
@pytest.mark.parametrize(("draft_id", "applicant_id"), [("", None), (None, "user-on-whose-behalf"), ("draft-7", None)])
def test_the_messages_are_pycti_s_own_and_the_work_expects_each_of_them(
    fake_opencti: FakeOpenCTI, helper: OpenCTIConnectorHelper, draft_id: str | None, applicant_id: str | None
) -> None:
    helper.draft_id, helper.applicant_id = draft_id, applicant_id  # as the listener sets them per message
    objects = sample_objects()
    object_count = len(objects)

    helper.work_id = ours = fake_opencti.create_work(helper.connect_id, None)
    assert push.push_objects(helper, objects) == object_count
    ours_pushed = pushed(fake_opencti, helper.connect_id, ours)

    helper.work_id = pycti_s = fake_opencti.create_work(helper.connect_id, None)
    helper.send_stix2_bundle(json.dumps(make_bundle(objects)))
    pycti_pushed = pushed(fake_opencti, helper.connect_id, pycti_s)

    assert fake_opencti.works[ours]["expectations"] == fake_opencti.works[pycti_s]["expectations"] == object_count
    assert [m["action_sequence"] for m in ours_pushed] == list(range(1, object_count + 1))
    assert [m["work_id"] for m in ours_pushed] == [ours] * object_count
    assert {(m["draft_id"], m["applicant_id"]) for m in ours_pushed} == {(draft_id, applicant_id)}
    assert {m["_properties"]["delivery_mode"] for m in ours_pushed} == {2}  # persistent
    for message in pycti_pushed:
        message["work_id"] = ours
    assert ours_pushed == pycti_pushed
    pushed_ids = {stix["id"] for m in ours_pushed for stix in m["content"]["objects"]}
    assert pushed_ids == {stix["id"] for stix in objects}


def test_a_bundle_larger_than_a_transaction_arrives_whole_and_in_order(
    fake_opencti: FakeOpenCTI, helper: OpenCTIConnectorHelper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(push, "TRANSACTION_SIZE", 4)
    helper.work_id = work_id = fake_opencti.create_work(helper.connect_id, None)
    objects = random.Random(5).sample(sample_objects(), len(sample_objects()))  # references before their targets

    count = push.push_objects(helper, objects)

    assert count == len(objects) > 3 * push.TRANSACTION_SIZE
    messages = pushed(fake_opencti, helper.connect_id, work_id)
    assert [m["action_sequence"] for m in messages] == list(range(1, count + 1))
    assert fake_opencti.works[work_id]["expectations"] == count
    sent: set[str] = set()
    for message in messages:  # each object after those it references
        (stix_object,) = message["content"]["objects"]
        references = {v for k, v in stix_object.items() if k.endswith("_ref")}
        references |= {ref for k, v in stix_object.items() if k.endswith("_refs") for ref in v}
        assert references <= sent, stix_object["id"]
        sent.add(stix_object["id"])
    assert sent == {stix_object["id"] for stix_object in objects}


def test_a_failure_while_publishing_queues_nothing_of_the_open_transaction(
    fake_opencti: FakeOpenCTI, helper: OpenCTIConnectorHelper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(push, "TRANSACTION_SIZE", 4)
    send = helper._send_bundle

    def send_then_fail(channel, piece, **kwargs):  # the 7th message cannot be sent
        if kwargs["sequence"] == 7:
            raise ConnectionError("broker gone")
        send(channel, piece, **kwargs)

    monkeypatch.setattr(helper, "_send_bundle", send_then_fail)
    helper.work_id = fake_opencti.create_work(helper.connect_id, None)

    with pytest.raises(ConnectionError, match="broker gone"):
        push.push_objects(helper, sample_objects())

    messages = fake_opencti.take_pushed_messages(helper.connect_id, timeout=2)
    assert [m["action_sequence"] for m in messages] == [1, 2, 3, 4]  # the first transaction only


def test_a_stop_request_ends_the_push_before_the_next_transaction(
    fake_opencti: FakeOpenCTI, helper: OpenCTIConnectorHelper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(push, "TRANSACTION_SIZE", 4)
    helper.work_id = work_id = fake_opencti.create_work(helper.connect_id, None)
    asked: list[int] = []

    def stop_requested() -> bool:
        asked.append(1)
        return len(asked) == 2  # asked before connecting, then before the second transaction

    with pytest.raises(push.PushStopped, match=r"^the connector was stopped while sending the bundle: 4 of "):
        push.push_objects(helper, sample_objects(), stop_requested)

    messages = fake_opencti.take_pushed_messages(helper.connect_id, timeout=2)
    assert [m["action_sequence"] for m in messages] == [1, 2, 3, 4]
    assert fake_opencti.works[work_id]["expectations"] == 4  # what was sent, no more


def test_a_stop_requested_before_the_push_sends_nothing_and_expects_nothing(
    fake_opencti: FakeOpenCTI, helper: OpenCTIConnectorHelper
) -> None:
    helper.work_id = work_id = fake_opencti.create_work(helper.connect_id, None)

    with pytest.raises(push.PushStopped, match=r"^the connector was stopped while sending the bundle: 0 of "):
        push.push_objects(helper, sample_objects(), lambda: True)

    assert fake_opencti.take_pushed_messages(helper.connect_id, timeout=1) == []
    assert fake_opencti.works[work_id]["expectations"] == 0


def test_sigterm_while_the_connector_pushes_ends_its_work_in_error_after_the_current_transaction(
    fake_opencti: FakeOpenCTI, helper: OpenCTIConnectorHelper, simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connector's stop (its Malbeacon client cancelled, as on SIGTERM) reaches a push in progress."""
    monkeypatch.setattr(push, "TRANSACTION_SIZE", 4)
    config = {"malbeacon": {"api_key": simulator.api_key, "api_base_url": simulator.base_url}}
    settings = settings_from(Settings, config)  # OpenCTI and connector settings: the helper's environment
    client = client_from_settings(settings.malbeacon)
    connector = MalbeaconConnector(settings, helper, client)
    send = helper._send_bundle

    def send_then_stop(channel, piece, **kwargs):  # SIGTERM while the second message is published
        send(channel, piece, **kwargs)
        if kwargs["sequence"] == 2:
            client.cancel()

    monkeypatch.setattr(helper, "_send_bundle", send_then_stop)
    standard_id = fake_opencti.add_entity("IPv4-Addr", "203.0.113.7")
    helper.work_id = fake_opencti.create_work(helper.connect_id, standard_id)
    data = {
        "entity_id": standard_id,
        "entity_type": "IPv4-Addr",
        "stix_entity": fake_opencti.stix_entity(standard_id),
        "stix_objects": fake_opencti.stix_objects(standard_id),
        "enrichment_entity": fake_opencti.entity(standard_id),
    }

    with pytest.raises(WorkFailed, match=r"^the connector was stopped while sending the bundle: 4 of "):
        connector.process_message(data)

    messages = fake_opencti.take_pushed_messages(helper.connect_id, timeout=2)
    assert [m["action_sequence"] for m in messages] == [1, 2, 3, 4]


def test_an_unreachable_broker_fails_the_push_before_the_work_expects_anything(
    fake_opencti: FakeOpenCTI, helper: OpenCTIConnectorHelper
) -> None:
    helper.connector_config["connection"]["port"] = free_ports()[0]  # nothing listens there
    helper.work_id = work_id = fake_opencti.create_work(helper.connect_id, None)

    with pytest.raises(pika.exceptions.AMQPConnectionError):
        push.push_objects(helper, sample_objects())

    assert fake_opencti.works[work_id]["expectations"] == 0


def test_a_platform_answer_slower_than_the_heartbeats_does_not_lose_the_push(
    fake_opencti: FakeOpenCTI, helper: OpenCTIConnectorHelper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(push, "HEARTBEAT_SECONDS", 1)  # the broker drops a silent connection after ~2 s
    fake_opencti.add_fault(Fault("workEdit", "addExpectations", delay_seconds=5))
    helper.work_id = work_id = fake_opencti.create_work(helper.connect_id, None)

    count = push.push_objects(helper, sample_objects())

    assert fake_opencti.works[work_id]["expectations"] == count
    assert len(pushed(fake_opencti, helper.connect_id, work_id)) == count


def test_other_ways_of_sending_are_left_to_pycti(fake_opencti: FakeOpenCTI, helper: OpenCTIConnectorHelper) -> None:
    helper.queue_protocol = "api"
    helper.work_id = work_id = fake_opencti.create_work(helper.connect_id, None)

    push.push_objects(helper, sample_objects())

    assert len(fake_opencti.api_bundles) == 1  # pycti's stixBundlePush mutation
    assert fake_opencti.take_pushed_messages(helper.connect_id, timeout=1) == []
    assert fake_opencti.works[work_id]["expectations"] == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("queue_protocol", "api"),
        ("bundle_send_to_queue", False),
        ("playbook", {"playbook_id": "p"}),
        ("enrichment_shared_organizations", ["identity--1"]),
        ("enrichment_shared_organizations", []),
        ("connect_validate_before_import", True),
        ("force_validation", True),
        ("bundle_send_to_directory", True),
        ("bundle_send_to_s3", True),
        ("bundle_send_to_s3", None),
    ],
)
def test_any_other_sending_feature_turns_the_transactions_off(name: str, value: object) -> None:
    def send_bundle(channel: object, bundle: str, **kwargs: object) -> None: ...

    assert push.plain_queue_push(SimpleNamespace(**push.PLAIN_SENDING, _send_bundle=send_bundle))
    assert not push.plain_queue_push(SimpleNamespace(**{**push.PLAIN_SENDING, name: value}, _send_bundle=send_bundle))
    missing = {key: setting for key, setting in push.PLAIN_SENDING.items() if key != name}
    assert not push.plain_queue_push(SimpleNamespace(**missing, _send_bundle=send_bundle))
    assert not push.plain_queue_push(SimpleNamespace(**push.PLAIN_SENDING))  # a pycti without its message builder


def test_the_helper_of_this_pycti_has_every_setting_read(helper: OpenCTIConnectorHelper) -> None:
    """A pycti upgrade that renames one of them must not go unnoticed (it would turn transactions off)."""
    assert push.plain_queue_push(helper)
