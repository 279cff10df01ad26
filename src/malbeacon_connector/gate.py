"""What is decided before any Malbeacon request: is the entity in scope, and what is its TLP."""

from collections.abc import Iterable, Mapping

from .tlp import most_restrictive, normalise_tlp


def in_scope(entity_type: str, scope: Iterable[str]) -> bool:
    """Whether an OpenCTI entity type is in the configured scope (case-insensitive)."""
    return entity_type.lower() in {entry.lower() for entry in scope}


def entity_tlp(markings: Iterable[Mapping] | None) -> str:
    """The most restrictive TLP among an entity's markings (OpenCTI API shape); TLP:CLEAR when none.

    A marking that claims to be TLP but names no known level counts as TLP:RED: when in
    doubt, nothing leaves the platform.
    """
    levels = []
    for marking in markings or ():
        definition = str(marking.get("definition") or "")
        is_tlp = str(marking.get("definition_type") or "").upper() == "TLP" or definition.upper().startswith("TLP:")
        if not is_tlp:
            continue
        try:
            levels.append(normalise_tlp(definition))
        except ValueError:
            levels.append("TLP:RED")
    return most_restrictive(levels)
