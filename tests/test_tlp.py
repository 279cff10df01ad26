"""TLP levels: parsing, ordering, marking definitions, agreement with stix2 and pycti; the TLP derived objects carry."""

import json
import operator
from datetime import UTC, datetime
from itertools import product

import pycti
import pytest
import stix2
from hypothesis import given, settings
from hypothesis import strategies as st

from malbeacon_connector.malbeacon.records import parse_records
from malbeacon_connector.pipeline import entity_for_value
from malbeacon_connector.stix.convert import convert
from malbeacon_connector.stix.ids import infrastructure_id, observable_id
from malbeacon_connector.stix.models import ConversionOptions, Findings, Lookup
from malbeacon_connector.tlp import (
    MARKING_DEFINITIONS,
    TLP2_EXTENSION_ID,
    TLP2_MARKING_IDS,
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


def test_tlp2_marking_ids_are_distinct_stix_ids_of_their_own():
    """The five OASIS TLP 2.0 ids: one per level, none a TLP 1.0 id, each a marking stix2 accepts."""
    assert set(TLP2_MARKING_IDS) == set(TLP_LEVELS)
    assert len(set(TLP2_MARKING_IDS.values())) == len(TLP_LEVELS)
    assert not set(TLP2_MARKING_IDS.values()) & {marking_id(level) for level in TLP_LEVELS}
    for level, tlp2_id in TLP2_MARKING_IDS.items():
        extension = {"extension_type": "property-extension", "tlp_2_0": level.removeprefix("TLP:").lower()}
        stix2.MarkingDefinition(id=tlp2_id, name=level, extensions={TLP2_EXTENSION_ID: extension})


# -- the TLP of derived objects: the most restrictive of every entity they come from, in any order --

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
TLP_OF_MARKING = {marking_id(level): level for level in TLP_LEVELS}


def beacon(**fields: str) -> dict:
    """A Malbeacon row; fields left out are `NA`."""
    row = dict.fromkeys(["actorip", "actorhostname", "c2", "c2domain", "c2domainresolved", "useragent"], "NA")
    return {**row, "tstamp": "2021-03-04 08:12:45", **fields}


def enrichment(value: str, tlp: str, *rows: dict) -> Findings:
    entity_type = "IPv4-Addr" if value[0].isdigit() else "Domain-Name"
    return Findings(entity_for_value(value, entity_type, tlp), [Lookup("c2", parse_records(list(rows)).records)])


def converted(enrichments: list[Findings], **options: bool) -> dict[str, dict]:
    """The objects of one conversion by id."""
    return {o["id"]: o for o in convert(enrichments, ConversionOptions(**options), NOW).objects}


def tlp_of(stix_object: dict) -> str:
    return most_restrictive(TLP_OF_MARKING[ref] for ref in stix_object.get("object_marking_refs", []))


def touching(objects: dict[str, dict], object_id: str) -> list[dict]:
    """The relationships from or to an object."""
    return [
        o for o in objects.values() if o["type"] == "relationship" and object_id in (o["source_ref"], o["target_ref"])
    ]


def assert_shared_object_is_red(enrichments: list[Findings], stix_id: str, **options: bool) -> dict[str, dict]:
    """In both orders: the shared object and every relationship touching it are TLP:RED."""
    for order in (enrichments, enrichments[::-1]):
        objects = converted(order, **options)
        assert tlp_of(objects[stix_id]) == "TLP:RED"
        relationships = touching(objects, stix_id)
        assert relationships and all(tlp_of(rel) == "TLP:RED" for rel in relationships)
    return objects


def test_a_host_name_actor_of_a_clear_value_and_c2_of_a_red_value_is_red_in_either_order():
    shared = "shared.example.com"
    clear = enrichment("203.0.113.7", "TLP:CLEAR", beacon(actorip="192.0.2.5", actorhostname=shared))
    red = enrichment("198.51.100.9", "TLP:RED", beacon(c2domain=shared))
    objects = assert_shared_object_is_red([clear, red], observable_id("domain-name", shared))
    # not everything turned RED: the CLEAR value's own panel and actor IP keep their TLP
    assert tlp_of(objects[infrastructure_id("C2 panel 203.0.113.7")]) == "TLP:CLEAR"
    assert tlp_of(objects[observable_id("ipv4-addr", "192.0.2.5")]) == "TLP:CLEAR"


def test_a_c2_address_of_panels_of_different_tlps_is_red_in_either_order():
    address = "192.0.2.80"
    clear = enrichment("a.example.com", "TLP:CLEAR", beacon(c2domain="a.example.com", c2domainresolved=address))
    red = enrichment("b.example.com", "TLP:RED", beacon(c2domain="b.example.com", c2domainresolved=address))
    assert_shared_object_is_red([clear, red], observable_id("ipv4-addr", address))


def test_a_user_agent_of_actors_of_different_tlps_is_red_in_either_order():
    agent = "Mozilla/5.0 (X11; Linux x86_64) Firefox/118.0"
    clear = enrichment("203.0.113.7", "TLP:CLEAR", beacon(actorip="192.0.2.5", useragent=agent))
    red = enrichment("203.0.113.8", "TLP:RED", beacon(actorip="192.0.2.6", useragent=agent))
    assert_shared_object_is_red([clear, red], observable_id("user-agent", agent), user_agents=True)


HOSTS = ["a.example.com", "b.example.com", "c.example.com"]
IPS = ["192.0.2.1", "192.0.2.2", "198.51.100.3"]
FIELDS = {
    "actorip": st.sampled_from(IPS),
    "actorhostname": st.sampled_from(HOSTS),
    "c2domain": st.sampled_from(HOSTS),
    "c2domainresolved": st.sampled_from(IPS),
    "c2": st.sampled_from(HOSTS).map(lambda host: f"http://{host}/gate.php"),
    "useragent": st.sampled_from(["agent-one/1.0", "agent-two/2.0"]),
}
beacon_rows = st.lists(
    st.fixed_dictionaries({}, optional=FIELDS).map(lambda fields: beacon(**fields)), min_size=1, max_size=3
)
enriched_values = st.lists(st.sampled_from([*IPS, *HOSTS, "203.0.113.7", "203.0.113.8"]), min_size=1, max_size=4)


def named_values(rows_of_value: list[dict]) -> set[str]:
    """The observable values some rows name (a user agent only beside an actor IP)."""
    named = set()
    for row in rows_of_value:
        named |= {value for field, value in row.items() if field not in ("tstamp", "useragent") and value != "NA"}
        if row["actorip"] != "NA" and row["useragent"] != "NA":
            named.add(row["useragent"])
    return named


@settings(max_examples=150, deadline=None)
@given(st.data(), enriched_values.flatmap(lambda values: st.permutations(sorted(set(values)))))
def test_derived_objects_carry_the_strictest_tlp_of_their_sources_in_any_order(data, values):
    """Each observable: the most restrictive TLP of the values whose records name it; each relationship: at
    least the TLP of both its ends; the same markings whatever the order of the enrichments."""
    sources = [(value, data.draw(st.sampled_from(TLP_LEVELS)), data.draw(beacon_rows)) for value in values]
    enrichments = [enrichment(value, tlp, *value_rows) for value, tlp, value_rows in sources]
    objects = converted(enrichments, user_agents=True)
    strictest: dict[str, list[str]] = {}
    for _, tlp, value_rows in sources:
        for named in named_values(value_rows):
            strictest.setdefault(named, []).append(tlp)
    enriched_ids = {item.entity.stix_id for item in enrichments}
    built = {o["value"]: o for o in objects.values() if "value" in o and o["id"] not in enriched_ids}
    assert set(built) == set(strictest) - set(values)
    for value, stix_object in built.items():  # a user agent carries its actor's TLP: perhaps more restrictive
        compare = operator.ge if stix_object["type"] == "user-agent" else operator.eq
        assert compare(tlp_rank(tlp_of(stix_object)), tlp_rank(most_restrictive(strictest[value]))), value
    for rel in (o for o in objects.values() if o["type"] == "relationship"):
        ends = (tlp_of(objects[rel["source_ref"]]), tlp_of(objects[rel["target_ref"]]))
        assert tlp_rank(tlp_of(rel)) >= max(map(tlp_rank, ends)), rel["relationship_type"]
    reordered = converted(data.draw(st.permutations(enrichments)), user_agents=True)
    assert {i: tlp_of(o) for i, o in reordered.items()} == {i: tlp_of(o) for i, o in objects.items()}
