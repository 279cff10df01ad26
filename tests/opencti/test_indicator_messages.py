"""Message handling of indicators, without a broker: pycti's helper is a stub, Malbeacon the simulator."""

import pytest
from stubs import StubHelper, connector_settings, indicator_message

from malbeacon_connector.malbeacon.client import client_from_settings
from malbeacon_connector.malbeacon.simulator import Fault
from malbeacon_connector.opencti.connector import MalbeaconConnector, WorkFailed
from malbeacon_connector.stix.builder import AUTHOR_ID
from malbeacon_connector.stix.ids import observable_id, relationship_id
from malbeacon_connector.tlp import marking_id

SCOPE = "IPv4-Addr,IPv6-Addr,Domain-Name,Indicator"
C2_IP, C2_DOMAIN, UNKNOWN = (
    ("IPv4-Addr", "203.0.113.7"),
    ("Domain-Name", "panel.example.net"),
    ("IPv4-Addr", "198.51.100.250"),
)
RED = [{"definition_type": "TLP", "definition": "TLP:RED", "standard_id": marking_id("TLP:RED")}]


def handler(simulator, playbook: bool = False, scope: str = SCOPE, auto: bool = False, **malbeacon: object):
    settings = connector_settings(auto, scope, api_base_url=simulator.base_url, api_key=simulator.api_key, **malbeacon)
    helper = StubHelper(playbook={"execution_id": "e"} if playbook else None)
    return MalbeaconConnector(settings, helper, client_from_settings(settings.malbeacon))  # type: ignore[arg-type]


def indicates(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o["type"] == "relationship" and o["relationship_type"] == "indicates"]


@pytest.mark.parametrize("playbook", [False, True])
def test_a_found_indicator_sends_its_observable_s_knowledge_and_indicates_the_c2(simulator, sent, playbook):
    data = indicator_message(C2_IP)
    result = handler(simulator, playbook).process_message(data)
    assert result.startswith("Indicator 'Known C2': 203.0.113.7 (IPv4-Addr): 6 records, 6 kept; ")
    assert "[1 API call]; indicates 1 C2 infrastructure; " in result and result.endswith("objects sent")
    ((bundle,),) = [sent]
    objects = {o["id"]: o for o in bundle["objects"]}
    indicator = objects[data["stix_entity"]["id"]]
    assert "confidence" not in indicator and indicator["pattern"] == data["stix_entity"]["pattern"]
    assert observable_id("ipv4-addr", "203.0.113.7") in objects  # the observable's id: merged on the platform
    (panel,) = [o for o in objects.values() if o["type"] == "infrastructure"]
    (relationship,) = indicates(bundle["objects"])
    assert relationship["id"] == relationship_id("indicates", indicator["id"], panel["id"])
    assert relationship["created_by_ref"] == AUTHOR_ID
    assert [(r.endpoint, r.value) for r in simulator.api_requests()] == [("c2", "203.0.113.7")]


@pytest.mark.parametrize(
    ("data", "scope", "expected", "requests"),
    [
        (indicator_message(C2_IP, pattern_type="sigma"), SCOPE, "Indicator 'Known C2' has a sigma pattern type", 0),
        (indicator_message(("Url", "https://panel.example.net/gate")), SCOPE, "Indicator 'Known C2' has no value", 0),
        (indicator_message(C2_IP, C2_DOMAIN, markings=RED), SCOPE, "'Known C2' is TLP:RED, above MALBEACON_MAX_TLP", 0),
        (indicator_message(C2_IP), "IPv4-Addr", "Indicator 'Known C2' is out of scope (IPv4-Addr)", 0),
        (indicator_message(UNKNOWN), SCOPE, "Indicator 'Known C2': 198.51.100.250 (IPv4-Addr): not found", 1),
    ],
    ids=["sigma", "no-value-in-scope", "tlp-red", "out-of-scope", "not-found"],
)
@pytest.mark.parametrize("playbook", [False, True])
def test_every_indicator_path_without_knowledge_ends_with_a_message_and_a_playbook_gets_its_bundle(
    simulator, sent, data, scope, expected, requests, playbook
):
    assert handler(simulator, playbook, scope).process_message(data).startswith(expected)
    assert sent == ([{"type": "bundle", "id": sent[0]["id"], "objects": data["stix_objects"]}] if playbook else [])
    assert len(simulator.api_requests()) == requests  # nothing asked before the gates pass


def test_several_values_are_looked_up_in_one_enrichment_and_said_each(simulator, sent):
    result = handler(simulator).process_message(indicator_message(C2_IP, UNKNOWN, C2_DOMAIN))
    lines = result.split(" | ")
    assert lines[0].startswith("Indicator 'Known C2': 203.0.113.7 (IPv4-Addr): 6 records")
    assert lines[1] == "198.51.100.250 (IPv4-Addr): not found in Malbeacon [1 API call]"
    assert lines[2].startswith("panel.example.net (Domain-Name): 3 records")
    assert "; indicates 2 C2 infrastructures; " in lines[2]
    ((bundle,),) = [sent]
    assert len(indicates(bundle["objects"])) == 2
    assert [r.value for r in simulator.api_requests()] == ["203.0.113.7", "198.51.100.250", "panel.example.net"]


def test_a_failed_lookup_of_one_value_ends_the_work_in_error_and_sends_nothing(simulator, sent):
    simulator.add_fault(Fault(kind="status", status=401, value="panel.example.net"))
    with pytest.raises(WorkFailed, match=r" \| panel\.example\.net \(Domain-Name\): failed: .*HTTP 401"):
        handler(simulator).process_message(indicator_message(C2_IP, C2_DOMAIN))
    assert sent == []


def test_without_infrastructures_the_indicator_indicates_nothing_and_says_so(simulator, sent):
    result = handler(simulator, create_infrastructure=False).process_message(indicator_message(C2_IP))
    assert "; indicates nothing: no infrastructure is made (MALBEACON_CREATE_INFRASTRUCTURE=false); " in result
    ((bundle,),) = [sent]
    assert indicates(bundle["objects"]) == [] and not [o for o in bundle["objects"] if o["type"] == "infrastructure"]


def test_values_looked_up_as_actors_only_indicate_no_c2(simulator, sent):
    result = handler(simulator, ip_lookups="actorip").process_message(indicator_message(("IPv4-Addr", "198.51.100.23")))
    assert "; indicates no C2 infrastructure: none of its values is a C2 panel; " in result
    ((bundle,),) = [sent]
    assert indicates(bundle["objects"]) == []


def test_an_automatic_enrichment_of_an_indicator_this_connector_created_is_not_looked_up(simulator, sent):
    data = indicator_message(C2_IP, author=AUTHOR_ID, internal={"mode": "auto"})
    result = handler(simulator, auto=True).process_message(data)
    assert result.startswith("'Known C2' was created by this connector (author Malbeacon)")
    assert simulator.api_requests() == [] and sent == []
