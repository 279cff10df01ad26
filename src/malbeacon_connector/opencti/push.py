"""Pushes a bundle to the platform's workers: pycti's own messages, published in AMQP transactions.

pycti's `send_stix2_bundle` splits a bundle into one message per object and waits for the
broker to confirm each message before publishing the next; the messages are persistent, so
each confirmation waits for a disk write. Here the
same split and the same messages (built by pycti's `_send_bundle`) are published in
transactions of up to `TRANSACTION_SIZE` messages: one round trip and one disk write per
transaction. The broker makes a transaction's messages visible and durable at its commit; those
of a transaction never committed (connection lost, error) are dropped, and the work ends in error.
Unlike confirmed publishing, a transaction cannot learn that a queue refused a message (an
operator's queue-length limit with `reject-publish`; the platform sets none on these queues).

Every other way of sending (playbook step, validation before import, shared organisations,
directory or S3 copies, the `api` queue protocol) is left to `send_stix2_bundle` as it is.
"""

import contextlib
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
from pycti import OpenCTIConnectorHelper
from pycti.utils.opencti_stix2_splitter import OpenCTIStix2Splitter

from malbeacon_connector.opencti import compat

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


def push_bundle(helper: OpenCTIConnectorHelper, bundle: str, stop_requested: Callable[[], bool] = lambda: False) -> int:
    """Send the bundle (JSON) for ingestion in the helper's current work; the number of messages sent.

    The bundle must be self-contained (the connector's are: `bundle.without_dangling_refs`): pycti's
    `cleanup_inconsistent_bundle` is not used, as it would also drop the organisations an entity is
    shared with from the objects that carry them as `x_opencti_granted_refs`.
    `stop_requested` is asked before each transaction: when true, `PushStopped` is raised, and the work
    expects only the messages already sent.
    """
    if not plain_queue_push(helper):
        return len(helper.send_stix2_bundle(bundle))
    expectations, _, pieces = OpenCTIStix2Splitter().split_bundle_with_expectations(bundle=bundle, use_json=True)
    if not pieces:
        helper.metric.inc("error_count")
        raise ValueError("Nothing to import")  # as send_stix2_bundle
    _publish(helper, pieces, expectations, stop_requested)
    return len(pieces)


def plain_queue_push(helper: OpenCTIConnectorHelper) -> bool:
    """True when `send_stix2_bundle` would only split the bundle and publish it to the broker, and this pycti
    has what publishing in transactions reuses (`compat.transactions_supported`)."""
    missing = object()
    plain = all(getattr(helper, name, missing) == value for name, value in PLAIN_SENDING.items())
    return plain and compat.transactions_supported(helper)


def _publish(
    helper: OpenCTIConnectorHelper, pieces: list[str], expectations: int, stop_requested: Callable[[], bool]
) -> None:
    """Publish the pieces; the work expects them once the broker is reached (none if it cannot be), and
    no more than were sent when a stop ends the publishing."""
    work_id = helper.work_id
    if stop_requested():
        raise _stopped(0, len(pieces))
    connection = pika.BlockingConnection(_connection_parameters(helper))
    try:
        if work_id:
            helper.api.work.add_expectations(work_id, expectations)
            try:  # a slow platform answer may have outlasted the heartbeats: the broker then closed it
                connection.process_data_events(time_limit=0)
            except pika.exceptions.AMQPError:
                with contextlib.suppress(Exception):
                    connection.close()
                connection = pika.BlockingConnection(_connection_parameters(helper))
        channel = connection.channel()
        channel.tx_select()
        for start in range(0, len(pieces), TRANSACTION_SIZE):
            if start and stop_requested():
                if work_id:  # take back the expectations of what will not be sent
                    helper.api.work.add_expectations(work_id, start - len(pieces))
                raise _stopped(start, len(pieces))
            for sequence, piece in enumerate(pieces[start : start + TRANSACTION_SIZE], start=start + 1):
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
    finally:
        with contextlib.suppress(Exception):
            connection.close()


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
