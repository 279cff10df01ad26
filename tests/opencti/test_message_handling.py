"""Message handling without a broker: scope, TLP gate, outcomes, failures and the playbook's bundle back.

pycti's helper is a stub; the Malbeacon side is real (the simulator over loopback); the push is recorded.
"""

import pytest
from stubs import StubHelper, connector_settings, message

from malbeacon_connector.malbeacon.client import client_from_settings
from malbeacon_connector.opencti import connector as connector_module
from malbeacon_connector.opencti.connector import MalbeaconConnector, WorkFailed
from malbeacon_connector.tlp import marking_id

RED = [{"definition_type": "TLP", "definition": "TLP:RED", "standard_id": marking_id("TLP:RED")}]


def handler_for(simulator, playbook: bool = False, **malbeacon: object) -> tuple[MalbeaconConnector, StubHelper]:
    settings = connector_settings(api_base_url=simulator.base_url, **{"api_key": simulator.api_key, **malbeacon})
    helper = StubHelper(playbook={"execution_id": "e"} if playbook else None)
    return MalbeaconConnector(settings, helper, client_from_settings(settings.malbeacon)), helper  # type: ignore[arg-type]


@pytest.mark.parametrize("playbook", [False, True])
def test_a_found_value_sends_one_bundle_with_the_original_objects(simulator, sent, playbook):
    handler, _ = handler_for(simulator, playbook)
    data = message()
    result = handler.process_message(data)
    assert result.startswith("203.0.113.7 (IPv4-Addr): 6 records") and result.endswith("objects sent [1 API call]")
    (bundle,) = sent
    assert data["stix_entity"]["id"] in {o["id"] for o in bundle["objects"]}
    assert any(o["type"] == "indicator" for o in bundle["objects"])
    assert [(r.endpoint, r.value) for r in simulator.api_requests()] == [("c2", "203.0.113.7")]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (message("http://x.example/a", "Url"), "Url 'http://x.example/a' is out of scope"),
        (message(markings=RED), "'203.0.113.7' is TLP:RED, above MALBEACON_MAX_TLP (TLP:AMBER): not sent to Malbeacon"),
        (message("not a domain!", "Domain-Name"), "cannot be looked up in Malbeacon: 'not a domain!' is not a domain"),
        (message("198.51.100.250"), "198.51.100.250 (IPv4-Addr): not found in Malbeacon [1 API call]"),
    ],
    ids=["out-of-scope", "tlp-red", "invalid-value", "not-found"],
)
@pytest.mark.parametrize("playbook", [False, True])
def test_every_path_without_knowledge_ends_with_a_message_and_a_playbook_gets_its_bundle(
    simulator, sent, data, expected, playbook
):
    handler, helper = handler_for(simulator, playbook)
    assert handler.process_message(data).startswith(expected)
    assert sent == ([{"type": "bundle", "id": sent[0]["id"], "objects": data["stix_objects"]}] if playbook else [])
    looked_up = expected.startswith("198.51.100.250")
    assert len(simulator.api_requests()) == (1 if looked_up else 0)  # nothing asked before the gates pass
    assert any(line.startswith(expected) for line in helper.logged)


@pytest.mark.parametrize("playbook", [False, True])
def test_a_malbeacon_failure_ends_the_work_in_error_with_what_to_do(simulator, sent, playbook):
    handler, _ = handler_for(simulator, playbook, api_key="wrong-key")
    with pytest.raises(WorkFailed, match=r"HTTP 401\); check MALBEACON_API_KEY \[1 API call\]"):
        handler.process_message(message())
    assert len(sent) == (1 if playbook else 0)


@pytest.mark.parametrize("playbook", [False, True])
def test_an_unexpected_error_is_reported_and_the_connector_goes_on(simulator, sent, monkeypatch, playbook):
    handler, _ = handler_for(simulator, playbook)
    enrich_entities = connector_module.enrich_entities
    monkeypatch.setattr(connector_module, "enrich_entities", lambda *args: 1 / 0)
    with pytest.raises(
        WorkFailed, match=r"unexpected error \(ZeroDivisionError: division by zero\); the connector goes"
    ):
        handler.process_message(message())
    assert len(sent) == (1 if playbook else 0)
    monkeypatch.setattr(connector_module, "enrich_entities", enrich_entities)
    assert "objects sent" in handler.process_message(message())  # the next message is served
