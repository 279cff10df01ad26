"""Hostile markings through the TLP gate, property-based.

Random mixes of TLP markings in every producer's form, PAP and statement markings, garbage and
malformed entries: the gate never raises, never reads less than the strictest TLP marking it was
given, reads exactly that when the rest is merely not TLP, and TLP:RED when anything is malformed.
"""

import random

from hypothesis import given
from hypothesis import strategies as st

from e2e.fake_opencti import marking_definition, stix_marking
from malbeacon_connector.opencti.gate import bundle_tlp, entity_tlp
from malbeacon_connector.tlp import TLP2_EXTENSION_ID, TLP2_MARKING_IDS, TLP_LEVELS, marking_id, tlp_rank
from markings import STIX_FORMS, api_marking, custom_marking_id, level_word

levels = st.sampled_from(TLP_LEVELS)
custom_ids = st.uuids(version=4).map(lambda value: f"marking-definition--{value}")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
statements = st.text(max_size=20).filter(lambda text: "tlp" not in "".join(text.split()).lower())
tlp_words = st.sampled_from(["TLP:RED", "tlp:amber+strict", "green", "TLP:", "TLP:PURPLE", "white", "clear", ""])
# dictionaries with the fields markings have, holding anything
marking_like = st.fixed_dictionaries(
    {},
    optional={
        "id": custom_ids | st.sampled_from([*TLP2_MARKING_IDS.values(), marking_id("TLP:GREEN")]) | json_values,
        "standard_id": custom_ids | json_values,
        "definition_type": st.sampled_from(["tlp", "TLP", "statement", "PAP", "TLP:RED"]) | json_values,
        "definition": tlp_words | st.fixed_dictionaries({"tlp": tlp_words | json_values}) | json_values,
        "name": tlp_words | json_values,
        "x_opencti_definition_type": st.sampled_from(["TLP", "statement"]) | json_values,
        "x_opencti_definition": tlp_words | json_values,
        "extensions": st.fixed_dictionaries({TLP2_EXTENSION_ID: st.fixed_dictionaries({"tlp_2_0": tlp_words})})
        | json_values,
    },
)


def strictest(tlps: list[str]) -> str:
    return max(tlps, key=tlp_rank, default="TLP:CLEAR")


def shuffled(items: list, seed: int) -> list:
    random.Random(seed).shuffle(items)
    return items


# -- bundle markings: (refs, objects, level) -------------------------------------------------------


@st.composite
def readable_refs(draw: st.DrawFn) -> tuple[list[str], list[dict], str]:
    """A TLP marking reference: a standard id, with or without a definition, or a custom id and a definition."""
    tlp = draw(levels)
    ref = draw(st.sampled_from([marking_id(tlp), TLP2_MARKING_IDS[tlp]]) | custom_ids)
    standard = ref in (marking_id(tlp), TLP2_MARKING_IDS[tlp])
    with_definition = not standard or draw(st.booleans())
    form = draw(st.sampled_from(sorted(STIX_FORMS)))
    return [ref], [STIX_FORMS[form](tlp, ref)] if with_definition else [], tlp


@st.composite
def inert_refs(draw: st.DrawFn) -> tuple[list[str], list[object], str | None]:
    """References and objects that are not TLP: PAP and statements, unknown ids, unrelated objects."""
    ref = draw(custom_ids)
    kind = draw(st.sampled_from(["pap", "statement", "unknown", "unrelated"]))
    if kind == "pap":
        pap = draw(st.sampled_from(["PAP:CLEAR", "PAP:GREEN", "PAP:AMBER", "PAP:RED"]))
        return (
            [ref],
            [stix_marking(marking_definition({"definition_type": "PAP", "definition": pap, "standard_id": ref}))],
            None,
        )
    if kind == "statement":
        statement = draw(statements)
        return (
            [ref],
            [
                {
                    "type": "marking-definition",
                    "id": ref,
                    "definition_type": "statement",
                    "definition": {"statement": statement},
                }
            ],
            None,
        )
    if kind == "unknown":
        return [ref], [], None
    garbage = draw(st.sampled_from([None, 3, "x", [], {"id": ["not", "hashable"]}, {"type": "indicator", "id": ref}]))
    return [], [garbage], None


@st.composite
def malformed_refs(draw: st.DrawFn) -> tuple[list[object], list[dict], str]:
    """A reference that is not an id, or a definition that claims TLP in the wrong shape."""
    if draw(st.booleans()):
        return [draw(st.none() | st.integers() | st.lists(st.text(), max_size=2) | st.just({}))], [], "TLP:RED"
    ref = draw(custom_ids)
    wrong = draw(
        st.sampled_from(
            [
                {"definition_type": "tlp", "definition": "green"},
                {"definition_type": "tlp", "definition": {"tlp": 1}},
                {"definition_type": "tlp"},
                {"name": "TLP:EX:CHM"},
                {"x_opencti_definition_type": "TLP", "x_opencti_definition": None},
                {"extensions": {TLP2_EXTENSION_ID: {"tlp_2_0": "purple"}}},
                {"extensions": {TLP2_EXTENSION_ID: []}},
            ]
        )
    )
    return [ref], [{"type": "marking-definition", "id": ref, **wrong}], "TLP:RED"


def assemble(parts: list[tuple[list, list, str | None]], seed: int) -> tuple[list, list, str]:
    """The refs and objects of some parts, shuffled, and the strictest level among them."""
    refs = shuffled([ref for part in parts for ref in part[0]], seed)
    objects = shuffled([item for part in parts for item in part[1]], seed + 1)
    return refs, objects, strictest([part[2] for part in parts if part[2] is not None])


@given(st.lists(readable_refs() | inert_refs(), max_size=8), st.integers())
def test_bundle_tlp_is_exactly_the_strictest_readable_marking(parts, seed):
    refs, objects, expected = assemble(parts, seed)
    assert bundle_tlp({"object_marking_refs": refs}, objects) == expected


@given(
    st.lists(readable_refs() | inert_refs(), max_size=6),
    st.lists(malformed_refs(), min_size=1, max_size=2),
    st.integers(),
)
def test_bundle_tlp_with_anything_malformed_is_red(parts, malformed, seed):
    refs, objects, _ = assemble(parts + malformed, seed)
    assert bundle_tlp({"object_marking_refs": refs}, objects) == "TLP:RED"


@given(
    st.lists(readable_refs() | inert_refs() | malformed_refs(), max_size=6),
    st.lists(json_values | marking_like, max_size=4),
    st.lists(json_values | marking_like, max_size=4),
    st.integers(),
)
def test_bundle_tlp_never_reads_less_than_the_strictest_marking_whatever_else(parts, junk_refs, junk_objects, seed):
    refs, objects, expected = assemble(parts, seed)
    # junk definitions may share ids with the refs: they can only add readings
    objects += [
        {**item, "id": refs[0]} if isinstance(item, dict) and refs and isinstance(refs[0], str) else item
        for item in junk_objects
    ]
    result = bundle_tlp({"object_marking_refs": shuffled(refs + junk_refs, seed)}, shuffled(objects, seed))
    assert result in TLP_LEVELS
    assert tlp_rank(result) >= tlp_rank(expected)


@given(json_values, json_values | st.lists(marking_like, max_size=4))
def test_bundle_tlp_never_raises_on_any_entity_or_objects(stix_entity_refs, objects):
    assert bundle_tlp({"object_marking_refs": stix_entity_refs}, objects) in TLP_LEVELS
    assert bundle_tlp(stix_entity_refs, objects) in TLP_LEVELS


# -- the entity's markings, OpenCTI API shape: (entries, level) ------------------------------------


@st.composite
def readable_entries(draw: st.DrawFn) -> tuple[list[dict], str]:
    """A TLP marking as the platform's API gives it: full entries, spelling variants, standard ids."""
    tlp = draw(levels)
    spelling = draw(st.sampled_from([tlp, tlp.lower(), level_word(tlp), "TLP:WHITE" if tlp == "TLP:CLEAR" else tlp]))
    entry = draw(
        st.sampled_from(
            [
                marking_definition(tlp),
                api_marking(spelling),
                api_marking(spelling, "tlp"),
                {**api_marking("custom", "statement"), "standard_id": TLP2_MARKING_IDS[tlp]},
                {**api_marking(tlp, "statement"), "standard_id": custom_marking_id(tlp)},
            ]
        )
    )
    return [entry], tlp


@st.composite
def inert_entries(draw: st.DrawFn) -> tuple[list[dict], None]:
    """PAP and statement markings."""
    pap = draw(st.sampled_from(["PAP:CLEAR", "PAP:GREEN", "PAP:AMBER", "PAP:RED"]))
    statement = draw(statements)
    return [draw(st.sampled_from([marking_definition(pap), api_marking(statement, "statement")]))], None


@st.composite
def malformed_entries(draw: st.DrawFn) -> tuple[list[object], str]:
    """An entry that is not a marking, or a typed TLP marking of the wrong shape."""
    entry = draw(
        st.none()
        | st.integers()
        | st.text(max_size=10)
        | st.sampled_from([{"definition_type": "TLP"}, api_marking({"tlp": "green"}), api_marking(None)])  # type: ignore[arg-type]
    )
    return [entry], "TLP:RED"


def assemble_entries(parts: list[tuple[list, str | None]], seed: int) -> tuple[list, str]:
    entries = shuffled([entry for part in parts for entry in part[0]], seed)
    return entries, strictest([part[1] for part in parts if part[1] is not None])


@given(st.lists(readable_entries() | inert_entries(), max_size=8), st.integers())
def test_entity_tlp_is_exactly_the_strictest_readable_marking(parts, seed):
    entries, expected = assemble_entries(parts, seed)
    assert entity_tlp(entries) == expected


@given(st.lists(readable_entries() | inert_entries(), max_size=6), malformed_entries(), st.integers())
def test_entity_tlp_with_anything_malformed_is_red(parts, malformed, seed):
    entries, _ = assemble_entries([*parts, malformed], seed)
    assert entity_tlp(entries) == "TLP:RED"


@given(
    st.lists(readable_entries() | inert_entries() | malformed_entries(), max_size=6),
    st.lists(json_values | marking_like, max_size=4),
    st.integers(),
)
def test_entity_tlp_never_reads_less_than_the_strictest_marking_whatever_else(parts, junk, seed):
    entries, expected = assemble_entries(parts, seed)
    result = entity_tlp(shuffled(entries + junk, seed))
    assert result in TLP_LEVELS
    assert tlp_rank(result) >= tlp_rank(expected)


@given(json_values)
def test_entity_tlp_never_raises(markings):
    assert entity_tlp(markings) in TLP_LEVELS
