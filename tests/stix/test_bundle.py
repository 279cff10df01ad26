"""Bundles: merged without duplicates, and without references to objects they do not hold."""

import copy
import json

import pytest

from malbeacon_connector.stix.bundle import bundle_text, without_dangling_refs

ENTITY = "ipv4-addr--9ddd739e-87b1-587d-83f2-62ef1130af2f"
MARKING = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
AUTHOR = "identity--69f1df30-eb2f-5845-88e0-64e2d05ab72e"
ABSENT_MAC = "mac-addr--aa2ee4a5-ae28-5e8f-8d5a-2a0bd6f3cd0e"
ABSENT_AS = "autonomous-system--f720c34b-98ae-597f-ade5-27dc241e8c74"
ORGANISATION = "identity--0f8b5f4a-9a4e-5d5d-9e2a-3a1f2c8f5e11"


def test_references_to_absent_objects_go_and_the_others_stay_untouched():
    entity = {
        "id": ENTITY,
        "type": "ipv4-addr",
        "object_marking_refs": [MARKING],
        "resolves_to_refs": [ABSENT_MAC],
        "belongs_to_refs": [ABSENT_AS, AUTHOR],
        "x_opencti_created_by_ref": ABSENT_AS,
        "x_opencti_granted_refs": [ORGANISATION],
    }
    others = [{"id": MARKING, "type": "marking-definition"}, {"id": AUTHOR, "type": "identity"}]
    objects = [entity, *others]
    before = copy.deepcopy(objects)

    cleaned = without_dangling_refs(objects, {ENTITY, MARKING, AUTHOR})

    assert objects == before  # the caller's objects are not modified
    assert cleaned[1:] == others and cleaned[1] is others[0]
    assert cleaned[0] == {
        "id": ENTITY,
        "type": "ipv4-addr",
        "object_marking_refs": [MARKING],
        "belongs_to_refs": [AUTHOR],
        "x_opencti_granted_refs": [ORGANISATION],
    }


def test_a_self_contained_bundle_comes_back_as_it_was():
    objects = [
        {"id": ENTITY, "type": "ipv4-addr", "object_marking_refs": [MARKING], "x_opencti_created_by_ref": AUTHOR},
        {"id": MARKING, "type": "marking-definition"},
        {"id": AUTHOR, "type": "identity", "object_marking_refs": [MARKING]},
    ]
    cleaned = without_dangling_refs(objects, {o["id"] for o in objects})
    assert cleaned == objects and all(a is b for a, b in zip(cleaned, objects, strict=True))


def test_only_the_objects_to_check_are_looked_at():
    converted = {"id": AUTHOR, "type": "identity", "object_marking_refs": [ABSENT_AS]}
    given = {"id": ENTITY, "type": "ipv4-addr", "resolves_to_refs": [ABSENT_MAC]}
    cleaned = without_dangling_refs([given, converted], {ENTITY})
    assert cleaned == [{"id": ENTITY, "type": "ipv4-addr"}, converted] and cleaned[1] is converted


@pytest.mark.parametrize("count", [0, 1, 3])
def test_a_bundle_s_text_in_pieces_is_the_bundle_one_object_per_line(count):
    objects = [{"type": "note", "id": f"note--{n}", "content": 'Zürich 東京 \u2028 "quoted"\n'} for n in range(count)]
    bundle = {"type": "bundle", "id": "bundle--1", "objects": objects}
    pieces = list(bundle_text(bundle))
    text = "".join(pieces)
    assert json.loads(text) == bundle
    assert len(pieces) == count + 2 and text.endswith("\n")
    lines = [json.dumps(o, ensure_ascii=False) + ("," if n < count - 1 else "") for n, o in enumerate(objects)]
    assert text.split("\n")[1 : 1 + count] == lines
    assert ("Zürich 東京" in text) is (count > 0)
