"""The TLP promise end to end: an entity above MALBEACON_MAX_TLP never reaches Malbeacon.

Asserted on the requests the Malbeacon simulator received, for every entity TLP against every
maximum, with markings written in lower case, several markings on one entity, and non-TLP
markings (PAP, statements) beside a TLP.
"""

import pytest

from malbeacon_connector.tlp import TLP_LEVELS, tlp_rank

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
    for name, work_id in works.items():
        work = fake_opencti.wait_work_processed(work_id)
        allowed = tlp_rank(ENTITIES[name][1]) <= tlp_rank(max_tlp)
        assert ("above MALBEACON_MAX_TLP" in work["message"]) is not allowed, (name, work["message"])
    asked = {request.value.split(".")[0] for request in simulator.api_requests()}
    expected = {name for name, (_, tlp) in ENTITIES.items() if tlp_rank(tlp) <= tlp_rank(max_tlp)}
    assert asked == expected
