"""pycti internals the connector uses, each behind one feature check with the public path as fallback.

pycti 6.0 to 7.x differ in these; none is part of its documented API:
- the listen queue (`helper.listen_queue`, a thread): whether a message is being handed over, how to
  stop consuming, whether its broker connection is open (the health file), and waiting for it where
  `listen()` returns at once (6.0). Without it the connector's own record of the message in progress,
  and a stop at the next message, serve, and the broker is not checked by `health`;
- its message handler (`ListenQueue._data_handler`), wrapped to keep the message's mode
  (`trigger.capture_internal`; without it the work's name tells);
- pycti's splitter and message builder (`split_bundle_with_expectations`, `_send_bundle`) and its TLS
  context for the broker, used to publish bundles in transactions (`push.py`); without them every
  bundle goes through `send_stix2_bundle`. The splitter's `elements` tell which object each message
  holds (`split_elements`); without them each message is read;
- the CA bundle pycti writes for `HTTPS_CA_CERTIFICATES` (7.x), removed by `remove_proxy_certificates`
  since the connector's own stop replaces pycti's signal handlers and skips its exit handlers.
"""

import contextlib
import inspect
import json
import threading
from collections.abc import Iterator
from typing import Any

import pycti.api.opencti_api_client as pycti_api_client
import pycti.connector.opencti_connector_helper as pycti_helper
from pycti.utils.opencti_stix2_splitter import OpenCTIStix2Splitter


def listen_queue(helper: Any) -> threading.Thread | None:
    """The helper's listen queue (a thread), None before `listen()` or where pycti has none."""
    queue = getattr(helper, "listen_queue", None)
    return queue if isinstance(queue, threading.Thread) else None


def wait_for_listen_queue(helper: Any) -> None:
    """Where `listen()` returned once the queue was started (pycti 6.0), wait for the queue like later ones."""
    queue = listen_queue(helper)
    if queue is not None and queue is not threading.current_thread():
        queue.join()


def handing_over(helper: Any) -> bool:
    """The listen queue is processing a message (pycti's handler thread alive); False when unknown."""
    handler = getattr(listen_queue(helper), "thread", None)
    return isinstance(handler, threading.Thread) and handler.is_alive()


def consuming(helper: Any) -> bool:
    """The listen queue is connected to the broker (it may be about to hand over a message); False when unknown."""
    connection = getattr(listen_queue(helper), "pika_connection", None)
    return bool(getattr(connection, "is_open", False))


def broker_connected(helper: Any) -> bool | None:
    """The listen queue's broker connection is open; False before `listen()` or while pycti reconnects; None when
    this pycti tells nothing of it (no listen queue attribute, no connection attribute, or listening over HTTP:
    `CONNECTOR_LISTEN_PROTOCOL=API`)."""
    if not hasattr(helper, "listen_queue"):
        return None
    queue = listen_queue(helper)
    if queue is None:
        return False
    if not hasattr(queue, "pika_connection") or getattr(queue, "listen_protocol", "AMQP") != "AMQP":
        return None
    return consuming(helper)


def stop_consuming(helper: Any) -> bool:
    """Ask the listen queue to take no more messages; False when this pycti offers no way to."""
    queue = listen_queue(helper)
    exit_event = getattr(queue, "exit_event", None)
    if not isinstance(exit_event, threading.Event):
        return False
    exit_event.set()
    connection, channel = getattr(queue, "pika_connection", None), getattr(queue, "channel", None)
    if connection is not None and channel is not None:
        with contextlib.suppress(Exception):  # the connection may be closed already: exiting anyway
            connection.add_callback_threadsafe(channel.stop_consuming)
    return True


def listen_queue_class() -> type | None:
    """pycti's listen queue class, whose message handler `trigger.capture_internal` wraps."""
    queue_class = getattr(pycti_helper, "ListenQueue", None)
    return queue_class if isinstance(queue_class, type) else None


def _mq_ssl_context_factory() -> Any:
    create = getattr(pycti_helper, "create_mq_ssl_context", None)
    return create if callable(create) else None


def mq_ssl_context(config: dict) -> Any:
    """pycti's TLS context for the broker (its `MQ_USE_SSL_*` settings); None where pycti has none."""
    create = _mq_ssl_context_factory()
    return create(config) if create is not None else None


def transactions_supported(helper: Any) -> bool:
    """pycti has what publishing in transactions reuses: its splitter with expectations, its message builder
    taking the work, sequence and draft, and its broker TLS context."""
    if not callable(getattr(OpenCTIStix2Splitter, "split_bundle_with_expectations", None)):
        return False
    if _mq_ssl_context_factory() is None:
        return False
    send_bundle = getattr(helper, "_send_bundle", None)
    if not callable(send_bundle):
        return False
    try:
        parameters = inspect.signature(send_bundle).parameters
    except (TypeError, ValueError):
        return False
    takes_keywords = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return takes_keywords or {"work_id", "sequence", "draft_id"} <= set(parameters)


def remove_proxy_certificates() -> None:
    """Remove the temporary CA bundle pycti wrote for `HTTPS_CA_CERTIFICATES`; nothing where pycti writes none."""
    cleanup = getattr(pycti_api_client, "_cleanup_proxy_certificates", None)
    if callable(cleanup):
        cleanup()


def split_elements(splitter: OpenCTIStix2Splitter, pieces: list[str]) -> Iterator[tuple[dict, str]]:
    """Each message the splitter made, with the object it holds: its `elements`, in the messages' order,
    where they are that; else read from the message."""
    elements = getattr(splitter, "elements", None)
    if isinstance(elements, list) and len(elements) == len(pieces):
        yield from zip(elements, pieces, strict=True)
        return
    for piece in pieces:
        yield json.loads(piece)["objects"][0], piece
