"""TLP levels: parsing, ordering, marking definitions, agreement with stix2 and pycti."""

import json
from itertools import product

import pycti
import pytest
import stix2
from hypothesis import given
from hypothesis import strategies as st

from malbeacon_connector.tlp import (
    MARKING_DEFINITIONS,
    TLP_LEVELS,
    marking_id,
    most_restrictive,
    normalise_tlp,
    tlp_rank,
)

AMBER_STRICT_ID = "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("TLP:AMBER", "TLP:AMBER"),
        ("amber", "TLP:AMBER"),
        (" tlp:amber+strict ", "TLP:AMBER+STRICT"),
        ("AMBER+STRICT", "TLP:AMBER+STRICT"),
        ("TLP:WHITE", "TLP:CLEAR"),
        ("white", "TLP:CLEAR"),
        ("clear", "TLP:CLEAR"),
        ("Tlp:Green", "TLP:GREEN"),
        ("red", "TLP:RED"),
    ],
)
def test_normalise_tlp_accepts_spellings(text, expected):
    """Case, the `TLP:` prefix, surrounding spaces and the WHITE alias do not matter."""
    assert normalise_tlp(text) == expected


@pytest.mark.parametrize("text", ["purple", "", "TLP:", "amber-strict", "TLP:TLP:AMBER", "1"])
def test_normalise_tlp_rejects_unknown_levels_listing_the_allowed_ones(text):
    """An unknown level raises with a message naming the input and every allowed level."""
    with pytest.raises(ValueError, match="is not a TLP level") as raised:
        normalise_tlp(text)
    message = str(raised.value)
    assert repr(text) in message
    for level in TLP_LEVELS:
        assert level in message


def test_tlp_rank_orders_from_clear_to_red():
    """CLEAR < GREEN < AMBER < AMBER+STRICT < RED."""
    order = ["TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED"]
    assert [tlp_rank(level) for level in order] == [0, 1, 2, 3, 4]
    assert sorted(TLP_LEVELS, key=tlp_rank) == order


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ([], "TLP:CLEAR"),
        (["TLP:GREEN"], "TLP:GREEN"),
        (["TLP:GREEN", "TLP:RED", "TLP:AMBER"], "TLP:RED"),
        (["TLP:AMBER", "TLP:AMBER+STRICT", "TLP:CLEAR"], "TLP:AMBER+STRICT"),
        (iter(["TLP:CLEAR", "TLP:CLEAR"]), "TLP:CLEAR"),
    ],
)
def test_most_restrictive_picks_the_highest_rank(levels, expected):
    """The most restrictive level wins; no levels at all means TLP:CLEAR."""
    assert most_restrictive(levels) == expected


@given(st.lists(st.sampled_from(TLP_LEVELS), min_size=1))
def test_most_restrictive_is_at_least_every_input(levels):
    """The result is one of the inputs and no input outranks it."""
    result = most_restrictive(levels)
    assert result in levels
    assert all(tlp_rank(level) <= tlp_rank(result) for level in levels)


@pytest.mark.parametrize(
    ("tlp", "stix2_marking"),
    [
        ("TLP:CLEAR", stix2.TLP_WHITE),
        ("TLP:GREEN", stix2.TLP_GREEN),
        ("TLP:AMBER", stix2.TLP_AMBER),
        ("TLP:RED", stix2.TLP_RED),
    ],
)
def test_standard_marking_definitions_equal_stix2(tlp, stix2_marking):
    """The four standard markings are exactly stix2's JSON."""
    assert MARKING_DEFINITIONS[tlp] == json.loads(stix2_marking.serialize())
    assert marking_id(tlp) == stix2_marking.id


def test_amber_strict_is_opencti_statement_marking():
    """TLP:AMBER+STRICT is OpenCTI's statement marking with its fixed id and definition."""
    marking = MARKING_DEFINITIONS["TLP:AMBER+STRICT"]
    assert marking["id"] == AMBER_STRICT_ID
    assert marking_id("TLP:AMBER+STRICT") == AMBER_STRICT_ID
    assert marking["x_opencti_definition_type"] == "TLP"
    assert marking["x_opencti_definition"] == "TLP:AMBER+STRICT"
    assert marking["type"] == "marking-definition"


def test_every_level_has_a_distinct_marking_definition():
    """Each TLP level has its own marking definition id."""
    assert set(MARKING_DEFINITIONS) == set(TLP_LEVELS)
    assert len({marking_id(level) for level in TLP_LEVELS}) == len(TLP_LEVELS)


@pytest.mark.parametrize(("tlp", "max_tlp"), list(product(TLP_LEVELS, TLP_LEVELS)))
def test_rank_order_agrees_with_pycti_check_max_tlp(tlp, max_tlp):
    """A level is allowed under a maximum exactly when pycti says so."""
    assert pycti.OpenCTIConnectorHelper.check_max_tlp(tlp, max_tlp) == (tlp_rank(tlp) <= tlp_rank(max_tlp))
