"""The TLP promise end to end: an entity above MALBEACON_MAX_TLP never reaches Malbeacon.

Asserted on the requests the Malbeacon simulator received, for every entity TLP against every
maximum, with markings written in lower case, several markings on one entity, and non-TLP
markings (PAP, statements) beside a TLP; and for OASIS TLP 2.0 markings and malformed marking
references in a playbook bundle (an earlier step marked the entity, the stored entity is unmarked).
"""

import uuid

import pytest

from malbeacon_connector.tlp import TLP2_MARKING_IDS, TLP_LEVELS, tlp_rank
from markings import tlp2_definition

from .fake_opencti import FakeOpenCTI

LOWER_CASE_AMBER = {"definition_type": "tlp", "definition": "tlp:amber"}
STATEMENT = {"definition_type": "statement", "definition": "Copyright Example Corp"}

# name -> (markings of the entity, the TLP it should be treated as)
ENTITIES = {
    "none": ([], "TLP:CLEAR"),
    "clear": (["TLP:CLEAR"], "TLP:CLEAR"),
    "green": (["TLP:GREEN"], "TLP:GREEN"),
    "amber": (["TLP:AMBER"], "TLP:AMBER"),
    "amber-strict": (["TLP:AMBER+STRICT"], "TLP:AMBER+STRICT"),
    "red": (["TLP:RED"], "TLP:RED"),
    "lower-case-amber": ([LOWER_CASE_AMBER], "TLP:AMBER"),
    "green-and-red": (["TLP:GREEN", "TLP:RED"], "TLP:RED"),
    "pap-red-and-green": (["PAP:RED", "TLP:GREEN"], "TLP:GREEN"),
    "statement-and-amber": ([STATEMENT, "TLP:AMBER"], "TLP:AMBER"),
    "pap-only": (["PAP:AMBER"], "TLP:CLEAR"),
}
# name -> (object_marking_refs of the entity in a playbook bundle, marking definitions beside it, its TLP)
PLAYBOOK_ENTITIES = {
    "tlp2-red": ([TLP2_MARKING_IDS["TLP:RED"]], [tlp2_definition("TLP:RED", TLP2_MARKING_IDS["TLP:RED"])], "TLP:RED"),
    "tlp2-red-id-only": ([TLP2_MARKING_IDS["TLP:RED"]], [], "TLP:RED"),
    "tlp2-amber-strict": ([TLP2_MARKING_IDS["TLP:AMBER+STRICT"]], [], "TLP:AMBER+STRICT"),
    "tlp2-green": (
        [TLP2_MARKING_IDS["TLP:GREEN"]],
        [tlp2_definition("TLP:GREEN", TLP2_MARKING_IDS["TLP:GREEN"])],
        "TLP:GREEN",
    ),
    "refs-not-a-list": (TLP2_MARKING_IDS["TLP:GREEN"], [], "TLP:RED"),
}


def publish_playbook_bundle(fake_opencti: FakeOpenCTI, connector_id: str, entity_id: str, refs, definitions) -> str:
    """A playbook step whose bundle marks the entity with `refs`, `definitions` beside it; its work id."""
    captured: list[dict] = []
    publish = fake_opencti.publish_raw
    fake_opencti.publish_raw = lambda _, message: captured.append(message)  # type: ignore[method-assign]
    try:
        work_id = fake_opencti.publish_enrichment(connector_id, entity_id, playbook=True, work_id=str(uuid.uuid4()))
    finally:
        fake_opencti.publish_raw = publish  # type: ignore[method-assign]
    objects = captured[0]["event"]["bundle"]["objects"]
    objects[0]["object_marking_refs"] = refs
    objects.extend(definitions)
    publish(connector_id, captured[0])
    return work_id


@pytest.mark.parametrize("max_tlp", [level for level in TLP_LEVELS])
def test_only_entities_within_the_maximum_reach_malbeacon(
    start_connector, connector_env, fake_opencti, simulator, max_tlp
):
    process = start_connector({**connector_env, "CONNECTOR_SCOPE": "Domain-Name", "MALBEACON_MAX_TLP": max_tlp})
    process.wait_registered(fake_opencti)
    works = {}
    for name, (markings, _) in ENTITIES.items():
        entity_id = fake_opencti.add_entity("Domain-Name", f"{name}.tlp.example.com", markings)
        works[name] = fake_opencti.publish_enrichment(connector_env["CONNECTOR_ID"], entity_id)
    for name, (refs, definitions, _) in PLAYBOOK_ENTITIES.items():
        entity_id = fake_opencti.add_entity("Domain-Name", f"{name}.tlp.example.com")
        works[name] = publish_playbook_bundle(fake_opencti, connector_env["CONNECTOR_ID"], entity_id, refs, definitions)
    tlps = {name: tlp for name, (*_, tlp) in (ENTITIES | PLAYBOOK_ENTITIES).items()}
    for name, work_id in works.items():
        work = fake_opencti.wait_work_processed(work_id)
        allowed = tlp_rank(tlps[name]) <= tlp_rank(max_tlp)
        refusal = f"is {tlps[name]}, above MALBEACON_MAX_TLP ({max_tlp})"
        assert (refusal in work["message"]) is not allowed, (name, work["message"])
    asked = {request.value.split(".")[0] for request in simulator.api_requests()}
    expected = {name for name, tlp in tlps.items() if tlp_rank(tlp) <= tlp_rank(max_tlp)}
    assert asked == expected
