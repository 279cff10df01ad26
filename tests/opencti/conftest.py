"""Fixtures of the message-handling tests."""

import json

import pytest

from malbeacon_connector.opencti import connector as connector_module
from malbeacon_connector.stix.bundle import make_bundle


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    """The bundles the connector pushes (pycti's push needs a broker: recorded here instead)."""
    bundles: list[dict] = []

    def push(helper: object, objects: list[dict], stop_requested: object = None) -> int:
        bundles.append(json.loads(json.dumps(make_bundle(list(objects)))))
        return len(objects)

    monkeypatch.setattr(connector_module, "push_objects", push)
    return bundles
