"""Who asked for an enrichment: a user's click, a playbook, or the platform's auto-enrichment.

With auto-enrichment on, the platform sends back every observable the worker creates from
this connector's own bundles: looking those up would spend one paid API call per actor, and
their answers would create more observables in turn. Telling an automatic enrichment from a
click needs the message's `internal` part (`mode`), which pycti does not hand to the callback:
`capture_internal` keeps it in the event when pycti's listen queue has its message handler
(`_data_handler`, in every pycti from 6.0 to 7.x); without it, the work's name tells (the
platform names an automatic enrichment's work `Enrichment (<standard id>)`).
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any

from malbeacon_connector.stix.enriched import SCO_EXTENSION

INTERNAL_KEY = "x_malbeacon_internal"
AUTOMATIC_WORK_PREFIX = "Enrichment ("


def capture_internal(listen_queue_class: type | None) -> bool:
    """Make pycti's listen queue copy each message's `internal` part into its event (once); False when
    this pycti has no such handler (then `is_automatic` reads the work's name instead)."""
    handler = getattr(listen_queue_class, "_data_handler", None)
    if listen_queue_class is None or not callable(handler):
        return False
    if getattr(handler, "captures_internal", False):
        return True

    @functools.wraps(handler)
    def data_handler(queue: Any, json_data: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(json_data, dict) and isinstance(json_data.get("event"), dict):
            internal = json_data.get("internal")
            json_data["event"][INTERNAL_KEY] = dict(internal) if isinstance(internal, Mapping) else {}
        return handler(queue, json_data, *args, **kwargs)

    data_handler.captures_internal = True  # type: ignore[attr-defined]
    listen_queue_class._data_handler = data_handler  # type: ignore[attr-defined]
    return True


def is_automatic(event: Mapping[str, Any], work_name: Callable[[], str | None]) -> bool:
    """Whether the platform's auto-enrichment asked, not a user.

    The message's `mode` says so (`auto` or `manual`). Older platforms send no `mode`: there a
    click names the user who asked (`applicant_id`), an automatic enrichment names nobody. When
    pycti gave no `internal` part, the work's name tells; an unreadable name counts as a click.
    """
    internal = event.get(INTERNAL_KEY)
    if isinstance(internal, Mapping):
        mode = internal.get("mode")
        if mode in ("auto", "manual"):
            return mode == "auto"
        return not internal.get("applicant_id")
    return (work_name() or "").startswith(AUTOMATIC_WORK_PREFIX)


def author_id(opencti_entity: Mapping[str, Any], stix_entity: Mapping[str, Any]) -> str | None:
    """The STIX id of the entity's author: the platform's `createdBy`, else the STIX form's reference."""
    created_by = opencti_entity.get("createdBy")
    if isinstance(created_by, Mapping) and created_by.get("standard_id"):
        return str(created_by["standard_id"])
    extension = (stix_entity.get("extensions") or {}).get(SCO_EXTENSION) or {}
    reference = extension.get("created_by_ref") or stix_entity.get("x_opencti_created_by_ref")
    return str(reference or stix_entity.get("created_by_ref") or "") or None
