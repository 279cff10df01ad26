"""Scope and TLP decisions, made before any Malbeacon request.

TLP markings come in every producer's form (OpenCTI's API and STIX export, STIX 2.1 TLP 1.0, OASIS
TLP 2.0, standard ids with or without their definitions); what claims TLP unreadably, or is
malformed, counts as TLP:RED. The builders below write each form; `test_marking_fuzz.py` mixes them.
"""

import json

import pytest
import stix2
from pycti import OpenCTIConnectorHelper

from e2e.fake_opencti import marking_definition, stix_marking
from malbeacon_connector.opencti.gate import bundle_tlp, canonical_type, entity_tlp, in_scope
from malbeacon_connector.tlp import (
    MARKING_DEFINITIONS,
    TLP2_EXTENSION_ID,
    TLP2_MARKING_IDS,
    TLP_LEVELS,
    check_max_tlp,
    marking_id,
)
from markings import (
    CUSTOM_ID,
    STANDARD_IDS,
    STIX_FORMS,
    api_marking,
    custom_marking_id,
    named_only,
    stix21_definition,
    tlp2_definition,
)


def refs_tlp(refs: object, objects: object = ()) -> str:
    return bundle_tlp({"object_marking_refs": refs}, objects)


# -- the entity's markings, OpenCTI API shape ------------------------------------------------------


@pytest.mark.parametrize(
    ("markings", "expected"),
    [
        (None, "TLP:CLEAR"),
        ([], "TLP:CLEAR"),
        ([api_marking("TLP:GREEN")], "TLP:GREEN"),
        ([api_marking("tlp:amber+strict")], "TLP:AMBER+STRICT"),
        ([api_marking("TLP:WHITE")], "TLP:CLEAR"),
        ([api_marking("TLP:GREEN"), api_marking("TLP:RED"), api_marking("TLP:AMBER")], "TLP:RED"),
        ([api_marking("PAP:RED", "PAP"), api_marking("TLP:GREEN")], "TLP:GREEN"),
        ([api_marking("Internal use only", "statement")], "TLP:CLEAR"),
        ([api_marking("TLP:AMBER", "")], "TLP:AMBER"),  # recognised by its definition alone
        ([api_marking("AMBER")], "TLP:AMBER"),  # typed TLP: the prefix is optional
        ([api_marking("TLP:PURPLE")], "TLP:RED"),  # claims to be TLP, names no level: the safest reading
        ([api_marking("TLP:EX:CHM")], "TLP:RED"),
        ([marking_definition("TLP:AMBER+STRICT"), marking_definition("PAP:RED")], "TLP:AMBER+STRICT"),
        ([{**api_marking("custom", "statement"), "standard_id": TLP2_MARKING_IDS["TLP:RED"]}], "TLP:RED"),
        ([{"standard_id": marking_id("TLP:AMBER")}], "TLP:AMBER"),
    ],
)
def test_entity_tlp_is_the_most_restrictive_tlp_marking(markings, expected):
    assert entity_tlp(markings) == expected


@pytest.mark.parametrize(
    "markings",
    [
        {"definition": "TLP:GREEN"},  # not a list
        "TLP:GREEN",
        3,
        [None, api_marking("TLP:GREEN")],  # an entry that is not a marking
        ["TLP:GREEN"],
        [api_marking({"tlp": "green"})],  # a STIX definition where the API has text
        [{"definition_type": "TLP"}],  # typed TLP, no level
        [{"definition_type": "tlp", "definition": None}],
        [{"x_opencti_definition_type": "TLP", "x_opencti_definition": 2}],
    ],
)
def test_malformed_entity_markings_count_as_red(markings):
    assert entity_tlp(markings) == "TLP:RED"


# -- the marking references of a playbook bundle ---------------------------------------------------


@pytest.mark.parametrize(("ref", "tlp"), STANDARD_IDS)
def test_standard_ids_are_known_without_their_definitions(ref, tlp):
    """STIX 2.1 TLP 1.0 (and OpenCTI's AMBER+STRICT) and OASIS TLP 2.0 standard ids."""
    assert refs_tlp([ref]) == tlp


@pytest.mark.parametrize("tlp", TLP_LEVELS)
@pytest.mark.parametrize("form", STIX_FORMS)
def test_every_producers_definition_is_read(form, tlp):
    """A custom id: only its definition in the bundle tells the level."""
    ref = custom_marking_id(f"{form}/{tlp}")
    assert refs_tlp([ref], [STIX_FORMS[form](tlp, ref)]) == tlp


@pytest.mark.parametrize("tlp", TLP_LEVELS)
def test_tlp2_standard_definitions_with_their_ids(tlp):
    ref = TLP2_MARKING_IDS[tlp]
    assert refs_tlp([ref], [tlp2_definition(tlp, ref)]) == tlp


@pytest.mark.parametrize(
    ("stix2_marking", "tlp"),
    [
        (stix2.TLP_WHITE, "TLP:CLEAR"),
        (stix2.TLP_GREEN, "TLP:GREEN"),
        (stix2.TLP_AMBER, "TLP:AMBER"),
        (stix2.TLP_RED, "TLP:RED"),
    ],
)
def test_stix2_tlp1_definitions_with_their_ids(stix2_marking, tlp):
    assert refs_tlp([stix2_marking.id], [json.loads(stix2_marking.serialize())]) == tlp


def test_tlp2_red_in_a_playbook_bundle_beside_a_green_marking():
    """The regression: a TLP 2.0 RED marking was not recognised and the value went to Malbeacon."""
    red, green = TLP2_MARKING_IDS["TLP:RED"], marking_id("TLP:GREEN")
    objects = [tlp2_definition("TLP:RED", red), MARKING_DEFINITIONS["TLP:GREEN"]]
    assert refs_tlp([green, red], objects) == "TLP:RED"
    assert refs_tlp([TLP2_MARKING_IDS["TLP:AMBER+STRICT"]]) == "TLP:AMBER+STRICT"


@pytest.mark.parametrize(
    ("refs", "objects", "expected"),
    [
        ([], [], "TLP:CLEAR"),
        (None, [], "TLP:CLEAR"),
        ([CUSTOM_ID], [], "TLP:CLEAR"),  # unknown here: not TLP as far as we can tell
        ([CUSTOM_ID], [stix_marking(marking_definition("PAP:RED"))], "TLP:CLEAR"),
        (
            [CUSTOM_ID],
            [{"id": CUSTOM_ID, "definition_type": "statement", "definition": {"statement": "PAP:RED"}}],
            "TLP:CLEAR",
        ),
        ([marking_id("TLP:GREEN"), marking_id("TLP:RED")], list(MARKING_DEFINITIONS.values()), "TLP:RED"),
        ([marking_id("TLP:GREEN")], [None, 3, {"id": ["x"]}, MARKING_DEFINITIONS["TLP:GREEN"]], "TLP:GREEN"),
        ([marking_id("TLP:CLEAR")], [stix21_definition("TLP:RED", marking_id("TLP:CLEAR"))], "TLP:RED"),  # disagree
        ([CUSTOM_ID], [named_only("TLP:GREEN", CUSTOM_ID), named_only("TLP:AMBER", CUSTOM_ID)], "TLP:AMBER"),
        ([marking_id("TLP:RED").upper()], [], "TLP:RED"),  # ids in upper case
    ],
)
def test_bundle_tlp_reads_the_markings_of_a_playbook_bundle(refs, objects, expected):
    assert refs_tlp(refs, objects) == expected


@pytest.mark.parametrize(
    "definition",
    [
        {"definition_type": "tlp", "definition": "green"},  # text where STIX has an object
        {"definition_type": "tlp", "definition": {"tlp": 2}},
        {"definition_type": "tlp", "definition": {"statement": "green"}},
        {"definition_type": "TLP"},
        {"name": "TLP:EX:CHM"},  # claims TLP, names no known level
        {"x_opencti_definition_type": "TLP", "x_opencti_definition": "TLP:PURPLE"},
        {"x_opencti_definition_type": "TLP", "x_opencti_definition": {"tlp": "green"}},
        {"extensions": {TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": "purple"}}},
        {"extensions": {TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": ["green"]}}},
        {"extensions": {TLP2_EXTENSION_ID: "green"}},
    ],
)
def test_a_definition_claiming_tlp_unreadably_counts_as_red(definition):
    assert refs_tlp([CUSTOM_ID], [{"type": "marking-definition", "id": CUSTOM_ID, **definition}]) == "TLP:RED"


@pytest.mark.parametrize(
    "refs",
    [marking_id("TLP:GREEN"), {"id": marking_id("TLP:GREEN")}, 7, True, [None], [marking_id("TLP:GREEN"), ["x"]], [{}]],
)
def test_malformed_marking_refs_count_as_red(refs):
    assert refs_tlp(refs, [MARKING_DEFINITIONS["TLP:GREEN"]]) == "TLP:RED"


@pytest.mark.parametrize("stix_entity", [None, "ipv4-addr--x", ["object_marking_refs"]])
def test_an_entity_that_is_not_an_object_counts_as_red(stix_entity):
    assert bundle_tlp(stix_entity, []) == "TLP:RED"


# -- scope -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("IPv4-Addr", "IPv4-Addr"),
        ("ipv4-addr", "IPv4-Addr"),
        ("DOMAIN-NAME", "Domain-Name"),
        ("user-agent", "User-Agent"),
        ("url", "Url"),
        ("Email-Addr", None),
        ("", None),
    ],
)
def test_canonical_type_spells_supported_types_the_opencti_way(given, expected):
    assert canonical_type(given) == expected


def test_scope_check_ignores_case():
    assert in_scope("ipv4-addr", ["IPv4-Addr", "Domain-Name"])
    assert not in_scope("Url", ["IPv4-Addr", "Domain-Name"])


@pytest.mark.parametrize("max_tlp", TLP_LEVELS)
@pytest.mark.parametrize("tlp", TLP_LEVELS)
def test_the_one_tlp_rule_agrees_with_pycti(tlp, max_tlp):
    """The connector and the command line share `check_max_tlp`; pycti's own check gives the same answer."""
    assert check_max_tlp(tlp, max_tlp) is OpenCTIConnectorHelper.check_max_tlp(tlp, max_tlp)
