"""The rooms of the house: who may import what. pycti and pika in the OpenCTI room only, HTTP libraries in the
Malbeacon room only, the STIX room free of both, and no import cycle between rooms."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "malbeacon_connector"
ROOMS = ("malbeacon", "stix", "opencti")
PLATFORM_LIBRARIES = {"pycti", "pika"}
HTTP_LIBRARIES = {"requests", "urllib3", "http", "httpx", "aiohttp"}
ENTRY_POINTS = {"cli", "settings", "schema", "pipeline", "__main__"}  # at the top; they may use any room


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name relative to it (`stix.convert`, `cli`, ...)."""
    return {
        ".".join(path.relative_to(PACKAGE).with_suffix("").parts): path
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py"
    }


def imports(path: Path) -> set[str]:
    """The absolute module names a file imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            names.add(node.module or "")
    return names


def room(module: str) -> str:
    return module.split(".")[0] if module.split(".")[0] in ROOMS else "top"


def internal(name: str) -> str | None:
    """The module of the package an import names, relative to it; None for third-party ones."""
    return name.removeprefix("malbeacon_connector.") if name.startswith("malbeacon_connector.") else None


@pytest.mark.parametrize("module", sorted(modules()))
def test_outside_libraries_are_used_in_their_room_only(module):
    roots = {name.split(".")[0] for name in imports(modules()[module])}
    if room(module) != "opencti":
        assert not roots & PLATFORM_LIBRARIES, f"{module} imports {roots & PLATFORM_LIBRARIES}"
    if room(module) != "malbeacon":
        assert not roots & HTTP_LIBRARIES, f"{module} imports {roots & HTTP_LIBRARIES}"


def room_graph() -> dict[str, set[str]]:
    """Which room imports which (the shared modules at the top, entry points left out)."""
    graph: dict[str, set[str]] = {name: set() for name in (*ROOMS, "top")}
    for module, path in modules().items():
        if module in ENTRY_POINTS:
            continue
        for name in filter(None, map(internal, imports(path))):
            if room(name) != room(module):
                graph[room(module)].add(room(name))
    return graph


ALLOWED = {"top": set(), "malbeacon": {"top"}, "stix": {"top", "malbeacon"}, "opencti": {"top", "malbeacon", "stix"}}


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports between rooms beyond the allowed ones (which form no cycle: top < malbeacon < stix < opencti)."""
    return [f"{source} imports {target}" for source, targets in graph.items() for target in targets - ALLOWED[source]]


def test_no_import_cycle_between_rooms_and_shared_modules_use_no_room():
    assert violations(room_graph()) == []


def test_the_check_sees_a_room_importing_against_the_order():
    graph = {name: set(allowed) for name, allowed in ALLOWED.items()}
    graph["stix"].add("opencti")  # the STIX room reaching for pycti's room
    graph["top"].add("stix")  # a shared module using a room
    assert violations(graph) == ["top imports stix", "stix imports opencti"]
