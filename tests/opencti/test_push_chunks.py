"""The push works on chunks: each chunk's messages are those pycti's splitter makes of the whole bundle,
dependencies first, and no more than a transaction's worth of messages is held at once."""

import json
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pycti.utils.opencti_stix2_splitter import OpenCTIStix2Splitter

from malbeacon_connector.malbeacon.records import parse_records
from malbeacon_connector.opencti import compat, push
from malbeacon_connector.pipeline import entity_for_value
from malbeacon_connector.stix.bundle import dependencies_first, make_bundle, merge_objects, references
from malbeacon_connector.stix.convert import convert
from malbeacon_connector.stix.models import ConversionOptions, Findings, Lookup
from malbeacon_connector.tlp import MARKING_DEFINITIONS

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from responses import generate_rows


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    """A large enrichment's objects as the connector sends them: the platform's entity first, then the rest."""
    entity = entity_for_value("203.0.113.7", "IPv4-Addr", "TLP:AMBER")
    records = parse_records(generate_rows(1500, seed=7, profile="distinct")).records
    converted = convert([Findings(entity, [Lookup("c2", records)])], ConversionOptions(), datetime.now(UTC)).objects
    return merge_objects([entity.stix_object, MARKING_DEFINITIONS["TLP:AMBER"]], converted)


def messages(pieces: list[str]) -> list[tuple[str, int, str]]:
    """(object id, nb_deps, the object's JSON) of each message, without the bundle's id."""
    found = []
    for piece in pieces:
        content = json.loads(piece)
        (stix_object,) = content["objects"]
        found.append((stix_object["id"], content["x_opencti_seq"], json.dumps(stix_object, sort_keys=True)))
    return found


def test_the_chunks_hold_the_messages_of_the_whole_split_each_once(objects):
    whole = OpenCTIStix2Splitter().split_bundle_with_expectations(json.dumps(make_bundle(objects)), use_json=True)[2]
    chunks = list(push.message_chunks(dependencies_first(objects), 100))
    assert len(chunks) == -(-len(objects) // 100)
    assert all(len(chunk) <= 100 for chunk in chunks)
    chunked = [message for chunk in chunks for message in messages(chunk)]
    assert sorted(chunked) == sorted(messages(whole))
    assert len({message_id for message_id, _, _ in chunked}) == len(objects)


def test_one_chunk_gives_the_whole_split_in_its_order(objects):
    sample = objects[:300]
    whole = OpenCTIStix2Splitter().split_bundle_with_expectations(json.dumps(make_bundle(sample)), use_json=True)[2]
    (chunk,) = push.message_chunks(dependencies_first(sample), 1000)
    assert messages(chunk) == messages(whole)


def test_every_message_comes_after_those_of_the_objects_itreferences(objects):
    shuffled = random.Random(3).sample(objects, len(objects))
    known = {stix_object["id"] for stix_object in objects}
    sent: set[str] = set()
    for chunk in push.message_chunks(dependencies_first(shuffled), 64):
        for message_id, _, text in messages(chunk):
            assert {ref for ref in references(json.loads(text)) if ref in known} <= sent, message_id
            sent.add(message_id)
    assert sent == known


def test_no_more_than_a_chunk_and_its_dependencies_is_split_at_once(objects, monkeypatch):
    split_sizes: list[int] = []
    split = OpenCTIStix2Splitter.split_bundle_with_expectations

    def recorded(self, bundle, *args, **kwargs):
        split_sizes.append(len(json.loads(bundle)["objects"]))
        return split(self, bundle, *args, **kwargs)

    monkeypatch.setattr(OpenCTIStix2Splitter, "split_bundle_with_expectations", recorded)
    held = [len(chunk) for chunk in push.message_chunks(dependencies_first(objects), 50)]
    assert max(held) == 50 and sum(held) == len(objects)
    assert max(split_sizes) <= 3 * 50 + 5  # a relationship's source and target, the author, the markings
    assert len(split_sizes) == len(held)


def test_without_the_splitter_s_elements_each_message_is_read(objects):
    sample = objects[:40]
    splitter = OpenCTIStix2Splitter()
    pieces = splitter.split_bundle_with_expectations(json.dumps(make_bundle(sample)), use_json=True)[2]
    from_elements = [(element["id"], piece) for element, piece in compat.split_elements(splitter, pieces)]
    splitter.elements = None
    from_messages = [(element["id"], piece) for element, piece in compat.split_elements(splitter, pieces)]
    assert from_elements == from_messages and len(from_messages) == 40
