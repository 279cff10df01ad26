"""TLP levels: parsing user input, ordering, the marking definitions OpenCTI knows, the TLP 2.0 ids."""

from collections.abc import Iterable

TLP_LEVELS: tuple[str, ...] = ("TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED")
_ALIASES = {"TLP:WHITE": "TLP:CLEAR"}

# The standard STIX 2.1 TLP markings; OpenCTI names TLP:WHITE's definition TLP:CLEAR.
_STANDARD_CREATED = "2017-01-20T00:00:00.000Z"
MARKING_DEFINITIONS: dict[str, dict] = {
    "TLP:CLEAR": {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
        "created": _STANDARD_CREATED,
        "definition_type": "tlp",
        "name": "TLP:WHITE",
        "definition": {"tlp": "white"},
    },
    "TLP:GREEN": {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
        "created": _STANDARD_CREATED,
        "definition_type": "tlp",
        "name": "TLP:GREEN",
        "definition": {"tlp": "green"},
    },
    "TLP:AMBER": {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
        "created": _STANDARD_CREATED,
        "definition_type": "tlp",
        "name": "TLP:AMBER",
        "definition": {"tlp": "amber"},
    },
    "TLP:AMBER+STRICT": {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37",
        "created": "2022-10-01T00:00:00.000Z",
        "definition_type": "statement",
        "name": "TLP:AMBER+STRICT",
        "definition": {"statement": "custom"},
        "x_opencti_definition_type": "TLP",
        "x_opencti_definition": "TLP:AMBER+STRICT",
    },
    "TLP:RED": {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
        "created": _STANDARD_CREATED,
        "definition_type": "tlp",
        "name": "TLP:RED",
        "definition": {"tlp": "red"},
    },
}

# The OASIS TLP 2.0 markings (a STIX 2.1 property extension): fixed ids, the level in `tlp_2_0`.
TLP2_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_MARKING_IDS: dict[str, str] = {
    "TLP:CLEAR": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "TLP:GREEN": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "TLP:AMBER": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "TLP:AMBER+STRICT": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "TLP:RED": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

ALLOWED_TLP_TEXT = ", ".join(TLP_LEVELS) + " (case-insensitive, the 'TLP:' prefix optional)"


def normalise_tlp(text: str) -> str:
    """Return the canonical name of a TLP level written as `amber`, `tlp:amber+strict`, `TLP:WHITE`..."""
    name = text.strip().upper().replace(" ", "")
    if not name.startswith("TLP:"):
        name = "TLP:" + name
    name = _ALIASES.get(name, name)
    if name not in TLP_LEVELS:
        raise ValueError(f"{text!r} is not a TLP level; allowed: {ALLOWED_TLP_TEXT}")
    return name


_RANKS = {tlp: rank for rank, tlp in enumerate(TLP_LEVELS)}


def tlp_rank(tlp: str) -> int:
    """Position of a canonical TLP level, from the least (0) to the most restrictive."""
    return _RANKS[tlp]


def check_max_tlp(tlp: str, max_tlp: str) -> bool:
    """Whether a value of TLP `tlp` may be sent when `max_tlp` is the highest allowed (as pycti's check_max_tlp)."""
    return _RANKS[tlp] <= _RANKS[max_tlp]


def most_restrictive(tlps: Iterable[str]) -> str:
    """The most restrictive of some canonical TLP levels (TLP:CLEAR when there are none)."""
    return max(tlps, key=_RANKS.__getitem__, default="TLP:CLEAR")


def marking_id(tlp: str) -> str:
    """The STIX id of the marking definition of a canonical TLP level."""
    return MARKING_DEFINITIONS[tlp]["id"]
