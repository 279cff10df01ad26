"""Pushes a bundle to the platform's workers: pycti's own messages, published in AMQP transactions.

pycti's `send_stix2_bundle` splits a bundle into one message per object and waits for the
broker to confirm each message before publishing the next; the messages are persistent, so
each confirmation waits for a disk write. Here the
same split and the same messages (built by pycti's `_send_bundle`) are published in
transactions of up to `TRANSACTION_SIZE` messages: one round trip and one disk write per
transaction. The bundle is never serialised whole: its objects, dependencies first, are split
one transaction's worth at a time, so memory holds one transaction's messages, whatever the
bundle's size. The broker makes a transaction's messages visible and durable at its commit; those
of a transaction never committed (connection lost, error) are dropped, and the work ends in error.
Unlike confirmed publishing, a transaction cannot learn that a queue refused a message (an
operator's queue-length limit with `reject-publish`; the platform sets none on these queues).

Every other way of sending (playbook step, validation before import, shared organisations,
directory or S3 copies, the `api` queue protocol) is left to `send_stix2_bundle` as it is.
"""

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pika
import pika.exceptions
from pycti import OpenCTIConnectorHelper
from pycti.utils.opencti_stix2_splitter import OpenCTIStix2Splitter

from malbeacon_connector.opencti import compat
from malbeacon_connector.stix.bundle import dependencies_first, make_bundle, with_dependencies

TRANSACTION_SIZE = 1000
HEARTBEAT_SECONDS = 10  # as pycti's own publisher
# The helper's settings when sending is nothing but publishing to the broker (read from pycti's
# helper: any other value, or a setting missing after a pycti upgrade, leaves sending to pycti).
PLAIN_SENDING: dict[str, Any] = {
    "queue_protocol": "amqp",
    "bundle_send_to_queue": True,
    "playbook": None,
    "enrichment_shared_organizations": None,
    "connect_validate_before_import": False,
    "force_validation": False,
    "bundle_send_to_directory": False,
    "bundle_send_to_s3": False,
}


class PushStopped(Exception):
    """The connector is stopping: publishing ended at a transaction boundary, the rest was not sent."""


def push_objects(
    helper: OpenCTIConnectorHelper, objects: Sequence[dict], stop_requested: Callable[[], bool] = lambda: False
) -> int:
    """Send the objects (one bundle's) for ingestion in the helper's current work; the number of messages sent.

    The objects must be self-contained (the connector's are: `bundle.without_dangling_refs`): pycti's
    `cleanup_inconsistent_bundle` is not used, as it would also drop the organisations an entity is
    shared with from the objects that carry them as `x_opencti_granted_refs`.
    `stop_requested` is asked before each transaction: when true, `PushStopped` is raised, and the work
    expects only the messages already sent.
    """
    if not plain_queue_push(helper):
        return len(helper.send_stix2_bundle(json.dumps(make_bundle(list(objects)))))
    if not objects:
        helper.metric.inc("error_count")
        raise ValueError("Nothing to import")  # as send_stix2_bundle
    return _publish(helper, dependencies_first(objects), stop_requested)


def message_chunks(objects: Sequence[dict], size: int) -> Iterator[list[str]]:
    """pycti's messages for the objects (in `dependencies_first` order), `size` objects' worth at a time.

    Each chunk goes through pycti's splitter with the objects it references, so that every message is
    the one the splitter makes of the whole bundle (the same `nb_deps`); only the chunk's own are kept.
    """
    by_id = {stix_object["id"]: stix_object for stix_object in objects}
    position = {stix_object["id"]: index for index, stix_object in enumerate(objects)}
    bundle_id = f"bundle--{uuid.uuid4()}"
    for start in range(0, len(objects), size):
        chunk = objects[start : start + size]
        own = {stix_object["id"] for stix_object in chunk}
        splitter = OpenCTIStix2Splitter()
        context = json.dumps({"type": "bundle", "id": bundle_id, "objects": with_dependencies(chunk, by_id, position)})
        _, _, pieces = splitter.split_bundle_with_expectations(bundle=context, use_json=True)
        del context
        yield [piece for element, piece in compat.split_elements(splitter, pieces) if element["id"] in own]


def plain_queue_push(helper: OpenCTIConnectorHelper) -> bool:
    """True when `send_stix2_bundle` would only split the bundle and publish it to the broker, and this pycti
    has what publishing in transactions reuses (`compat.transactions_supported`)."""
    missing = object()
    plain = all(getattr(helper, name, missing) == value for name, value in PLAIN_SENDING.items())
    return plain and compat.transactions_supported(helper)


def _publish(helper: OpenCTIConnectorHelper, objects: list[dict], stop_requested: Callable[[], bool]) -> int:
    """Publish the objects' messages, one transaction per chunk. Once the broker is reached the work expects
    one message per object (none when it cannot be reached); when fewer were sent (a stop before the next
    transaction, objects the splitter refused), the rest is taken back. The number of messages sent."""
    work_id = helper.work_id
    if stop_requested():
        raise _stopped(0, len(objects))
    connection = pika.BlockingConnection(_connection_parameters(helper))
    sent = 0
    try:
        if work_id:
            helper.api.work.add_expectations(work_id, len(objects))
            connection = _alive(connection, helper)
        channel = connection.channel()
        channel.tx_select()
        for pieces in message_chunks(objects, TRANSACTION_SIZE):
            if sent and stop_requested():
                _take_back(helper, len(objects) - sent)
                raise _stopped(sent, len(objects))
            for sequence, piece in enumerate(pieces, start=sent + 1):
                helper._send_bundle(  # pycti's message, byte for byte
                    channel,
                    piece,
                    work_id=work_id,
                    sequence=sequence,
                    entities_types=[],
                    update=False,
                    draft_id=getattr(helper, "draft_id", None),
                )
            channel.tx_commit()
            sent += len(pieces)
        _take_back(helper, len(objects) - sent)
    finally:
        with contextlib.suppress(Exception):
            connection.close()
    return sent


def _take_back(helper: OpenCTIConnectorHelper, unsent: int) -> None:
    """The work no longer expects the messages that were not sent."""
    if helper.work_id and unsent:
        helper.api.work.add_expectations(helper.work_id, -unsent)


def _alive(connection: pika.BlockingConnection, helper: OpenCTIConnectorHelper) -> pika.BlockingConnection:
    """The connection, or a new one when a slow platform answer outlasted its heartbeats (the broker closed it)."""
    try:
        connection.process_data_events(time_limit=0)
        return connection
    except pika.exceptions.AMQPError:
        with contextlib.suppress(Exception):
            connection.close()
        return pika.BlockingConnection(_connection_parameters(helper))


def _stopped(sent: int, total: int) -> PushStopped:
    return PushStopped(
        f"the connector was stopped while sending the bundle: {sent} of {total} objects were sent; "
        "enrich the value again once it is back"
    )


def _connection_parameters(helper: OpenCTIConnectorHelper) -> pika.ConnectionParameters:
    """The broker pycti publishes to, as the platform (or the `MQ_*` settings) gave it."""
    connection = helper.connector_config["connection"]
    return pika.ConnectionParameters(
        heartbeat=HEARTBEAT_SECONDS,
        host=connection["host"],
        port=connection["port"],
        virtual_host=connection["vhost"],
        credentials=pika.PlainCredentials(connection["user"], connection["pass"]),
        ssl_options=(
            pika.SSLOptions(compat.mq_ssl_context(helper.config), connection["host"]) if connection["use_ssl"] else None
        ),
    )
