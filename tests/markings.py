"""TLP markings in every producer's form, for the tests: OpenCTI's API and STIX export, STIX 2.1
TLP 1.0, OASIS TLP 2.0 (as the stix2 library writes it), and markings with only a name."""

import json
import uuid
from collections.abc import Callable

import stix2

from e2e.fake_opencti import marking_definition, stix_marking
from malbeacon_connector.tlp import TLP2_EXTENSION_ID, TLP2_MARKING_IDS, TLP_LEVELS, marking_id

TLP2_CREATED = "2022-10-01T00:00:00.000Z"
CUSTOM_ID = "marking-definition--0d6e1a4b-1c1e-4a55-9a37-2b9f3f2c6a10"  # no standard marking's id


def api_marking(definition: str, definition_type: str = "TLP") -> dict:
    """An objectMarking entry as OpenCTI's API gives it (the fields the gate reads)."""
    return {"definition_type": definition_type, "definition": definition}


def level_word(tlp: str) -> str:
    """`TLP:AMBER+STRICT` -> `amber+strict`, as STIX definitions write a level."""
    return tlp.removeprefix("TLP:").lower()


def custom_marking_id(seed: str) -> str:
    """A deterministic marking id that no standard marking uses."""
    return f"marking-definition--{uuid.uuid5(uuid.NAMESPACE_URL, seed)}"


# -- STIX marking definitions, (level, id) -> the definition, one builder per producer's form -------


def tlp2_definition(tlp: str, definition_id: str) -> dict:
    """OASIS TLP 2.0 as the stix2 library serialises it: a name and the TLP 2.0 property extension."""
    extension = {"extension_type": "property-extension", "tlp_2_0": level_word(tlp)}
    marking = stix2.MarkingDefinition(
        id=definition_id, created=TLP2_CREATED, name=tlp, extensions={TLP2_EXTENSION_ID: extension}
    )
    return json.loads(marking.serialize())


def tlp2_typed_definition(tlp: str, definition_id: str) -> dict:
    """TLP 2.0 with `definition_type: "TLP:GREEN"` beside the extension, as some producers write it."""
    return {**tlp2_definition(tlp, definition_id), "definition_type": tlp}


def stix21_definition(tlp: str, definition_id: str) -> dict:
    """The STIX 2.1 TLP form (`definition_type: tlp`, `{"tlp": level}`), as pycti exports an entity's markings."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": definition_id,
        "created": "2017-01-20T00:00:00.000Z",
        "definition_type": "tlp",
        "name": tlp,
        "definition": {"tlp": level_word(tlp)},
    }


def opencti_export(tlp: str, definition_id: str) -> dict:
    """A TLP marking as the platform's STIX converter writes it (upper-case level, OpenCTI extension)."""
    return stix_marking(marking_definition({"definition_type": "TLP", "definition": tlp, "standard_id": definition_id}))


def opencti_statement(tlp: str, definition_id: str) -> dict:
    """OpenCTI's form for TLP:AMBER+STRICT: a statement whose `x_opencti_definition*` fields say TLP."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": definition_id,
        "created": "2022-10-01T00:00:00.000Z",
        "definition_type": "statement",
        "name": tlp,
        "definition": {"statement": "custom"},
        "x_opencti_definition_type": "TLP",
        "x_opencti_definition": tlp,
    }


def named_only(tlp: str, definition_id: str) -> dict:
    """A marking with only a name, which pycti imports as a TLP marking of that name."""
    return {"type": "marking-definition", "spec_version": "2.1", "id": definition_id, "name": tlp}


STIX_FORMS: dict[str, Callable[[str, str], dict]] = {
    "tlp2": tlp2_definition,
    "tlp2-typed": tlp2_typed_definition,
    "stix21": stix21_definition,
    "opencti-export": opencti_export,
    "opencti-statement": opencti_statement,
    "name-only": named_only,
}
STANDARD_IDS = [(marking_id(tlp), tlp) for tlp in TLP_LEVELS] + [(TLP2_MARKING_IDS[tlp], tlp) for tlp in TLP_LEVELS]
