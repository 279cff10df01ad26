"""Scope and TLP decisions, made before any Malbeacon request."""

import pytest

from malbeacon_connector.gate import bundle_tlp, canonical_type, entity_tlp, in_scope
from malbeacon_connector.tlp import MARKING_DEFINITIONS, marking_id


def api_marking(definition: str, definition_type: str = "TLP") -> dict:
    return {"definition_type": definition_type, "definition": definition}


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
        ([api_marking("TLP:PURPLE")], "TLP:RED"),  # claims to be TLP, names no level: the safest reading
        ([None, "TLP:RED", 3, api_marking("TLP:GREEN")], "TLP:GREEN"),  # not markings: ignored
        ({"definition": "TLP:RED"}, "TLP:CLEAR"),  # not a list
    ],
)
def test_entity_tlp_is_the_most_restrictive_tlp_marking(markings, expected):
    assert entity_tlp(markings) == expected


@pytest.mark.parametrize(
    ("refs", "objects", "expected"),
    [
        ([], [], "TLP:CLEAR"),
        ([marking_id("TLP:RED")], [], "TLP:RED"),  # a standard id needs no definition
        ([marking_id("TLP:AMBER+STRICT")], [], "TLP:AMBER+STRICT"),
        (["marking-definition--custom"], [], "TLP:CLEAR"),  # unknown here: not TLP as far as we can tell
        (
            ["marking-definition--custom"],
            [
                {
                    "id": "marking-definition--custom",
                    "x_opencti_definition_type": "TLP",
                    "x_opencti_definition": "TLP:RED",
                }
            ],
            "TLP:RED",
        ),
        (
            ["marking-definition--custom"],
            [{"id": "marking-definition--custom", "definition_type": "tlp", "definition": {"tlp": "amber"}}],
            "TLP:AMBER",
        ),
        (
            ["marking-definition--pap"],
            [{"id": "marking-definition--pap", "definition_type": "statement", "definition": {"statement": "PAP:RED"}}],
            "TLP:CLEAR",
        ),
        ([marking_id("TLP:GREEN"), marking_id("TLP:RED")], list(MARKING_DEFINITIONS.values()), "TLP:RED"),
    ],
)
def test_bundle_tlp_reads_the_markings_of_a_playbook_bundle(refs, objects, expected):
    assert bundle_tlp({"object_marking_refs": refs}, objects) == expected


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
