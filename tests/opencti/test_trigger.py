"""Telling an automatic enrichment from a click, and the connector's protection against enrichment loops."""

import pytest
from pycti.connector.opencti_connector_helper import ListenQueue
from stubs import StubHelper, connector_settings, message

from malbeacon_connector.malbeacon.errors import Unavailable
from malbeacon_connector.opencti.connector import MalbeaconConnector, WorkFailed
from malbeacon_connector.opencti.trigger import INTERNAL_KEY, author_id, capture_internal, is_automatic
from malbeacon_connector.stix.builder import AUTHOR_ID

USER = "88ec0c6a-13ce-5e39-b486-354fe4a7084f"


def never_read() -> str:
    raise AssertionError("the work's name is read only when the message's internal part is unknown")


@pytest.mark.parametrize(
    ("internal", "automatic"),
    [
        ({"mode": "auto", "trigger": "create", "applicant_id": None}, True),
        ({"mode": "auto", "trigger": "update", "applicant_id": None}, True),
        ({"mode": "manual", "trigger": "update", "applicant_id": None}, False),
        ({"work_id": "w", "applicant_id": USER}, False),  # an older platform's click names the user
        ({"work_id": "w", "applicant_id": None}, True),  # ... its automatic enrichment names nobody
        ({}, True),
    ],
)
def test_the_message_mode_tells_and_older_messages_are_read_by_their_applicant(internal, automatic):
    assert is_automatic({INTERNAL_KEY: internal}, never_read) is automatic


@pytest.mark.parametrize(
    ("work_name", "automatic"),
    [("Enrichment (ipv4-addr--0b1c)", True), ("Manual enrichment", False), (None, False), ("", False)],
)
def test_without_the_internal_part_the_work_name_tells_and_an_unreadable_one_is_a_click(work_name, automatic):
    assert is_automatic({"entity_id": "x"}, lambda: work_name) is automatic


class FakeQueue:
    """Stands for pycti's ListenQueue: hands the event to the callback as pycti does."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def _data_handler(self, json_data: dict) -> None:
        self.events.append(json_data["event"])


def test_capture_copies_the_internal_part_into_the_event_once():
    queue_class = type("Queue", (FakeQueue,), {})
    assert capture_internal(queue_class) and capture_internal(queue_class)  # idempotent
    queue = queue_class()
    queue._data_handler({"internal": {"mode": "auto", "work_id": "w"}, "event": {"entity_id": "x"}})
    queue._data_handler({"event": {"entity_id": "y"}})
    assert queue.events == [
        {"entity_id": "x", INTERNAL_KEY: {"mode": "auto", "work_id": "w"}},
        {"entity_id": "y", INTERNAL_KEY: {}},
    ]
    assert "captures_internal" not in vars(FakeQueue)  # only the class given is changed


def test_capture_is_refused_where_pycti_has_no_message_handler():
    assert capture_internal(None) is False
    assert capture_internal(type("Other", (), {})) is False


def test_the_pinned_pycti_has_the_message_handler_the_capture_wraps():
    queue_class = type("Queue", (ListenQueue,), {})
    assert capture_internal(queue_class) is True
    assert queue_class._data_handler.__wrapped__ is ListenQueue._data_handler


def test_the_author_is_read_from_the_platform_entity_else_from_the_stix_form():
    extension = {"extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82": {"created_by_ref": AUTHOR_ID}}
    assert author_id({"createdBy": {"standard_id": AUTHOR_ID}}, {}) == AUTHOR_ID
    assert author_id({"createdBy": None}, {"extensions": extension}) == AUTHOR_ID
    assert author_id({}, {"x_opencti_created_by_ref": AUTHOR_ID}) == AUTHOR_ID
    assert author_id({}, {}) is None


class CountingClient:
    """A Malbeacon client that counts lookups and fails them (the test is about whether one is made)."""

    def __init__(self) -> None:
        self.lookups = 0
        self.requests_sent = 0
        self.cancelled = False

    def answer(self, endpoint: str, value: str) -> None:
        self.lookups += 1
        self.requests_sent += 1
        raise Unavailable("simulated")


def connector(
    auto: bool = True, work_name: object = None, **malbeacon: object
) -> tuple[MalbeaconConnector, CountingClient]:
    client = CountingClient()
    handler = MalbeaconConnector(connector_settings(auto, **malbeacon), StubHelper(work_name), client)  # type: ignore[arg-type]
    return handler, client


def looked_up(handler: MalbeaconConnector, client: CountingClient, data: dict) -> bool:
    """Whether handling the message asked Malbeacon (the counting client makes every lookup fail)."""
    try:
        result = handler.process_message(data)
    except WorkFailed:
        assert client.lookups == 1
        return True
    assert client.lookups == 0 and "created by this connector" in result and "enrich it manually" in result
    return False


AUTO = {"mode": "auto", "trigger": "create"}


@pytest.mark.parametrize(
    ("author", "internal", "work_name", "expected"),
    [
        (AUTHOR_ID, AUTO, None, False),
        (AUTHOR_ID, {"mode": "manual"}, None, True),
        ("identity--00000000-0000-4000-8000-000000000000", AUTO, None, True),
        (None, AUTO, None, True),
        (AUTHOR_ID, None, "Enrichment (ipv4-addr--5e0a)", False),  # pycti without the capture: the work's name
        (AUTHOR_ID, None, "Manual enrichment", True),
        (AUTHOR_ID, None, RuntimeError("platform down"), True),
    ],
)
def test_only_an_automatic_enrichment_of_its_own_observable_is_not_looked_up(author, internal, work_name, expected):
    handler, client = connector(work_name=work_name)
    assert looked_up(handler, client, message(author=author, internal=internal)) is expected


def test_the_protection_applies_only_with_auto_enrichment_and_can_be_switched_off():
    for handler, client in (connector(auto=False), connector(skip_own_auto_enrichments=False)):
        assert looked_up(handler, client, message(author=AUTHOR_ID, internal=AUTO)) is True


def test_a_playbook_step_is_always_looked_up():
    handler, client = connector()
    handler._helper.playbook = {"execution_id": "e"}  # type: ignore[attr-defined]
    handler._send = lambda objects: None  # type: ignore[method-assign]  # the bundle handed back on failure
    assert looked_up(handler, client, message(author=AUTHOR_ID, internal=AUTO)) is True
