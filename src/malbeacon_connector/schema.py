"""The configuration schema (JSON Schema, by environment variable name), generated from the settings model.

`python -m malbeacon_connector.schema` rewrites `__metadata__/connector_config_schema.json`;
a test fails when that file is out of date.
"""

import json
import sys
from pathlib import Path
from typing import Any

from malbeacon_connector.settings import Settings

SCHEMA_PATH = Path("__metadata__") / "connector_config_schema.json"


def config_schema() -> dict[str, Any]:
    """Every setting as an environment variable, with its type, default, limits and description."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for section, field in Settings.model_fields.items():
        section_schema = field.annotation.model_json_schema()  # type: ignore[union-attr]
        for name, schema in section_schema["properties"].items():
            schema.pop("title", None)
            properties[f"{section}_{name}".upper()] = schema
        required += [f"{section}_{name}".upper() for name in section_schema.get("required", [])]
    properties["CONNECTOR_TYPE"] = {"const": "INTERNAL_ENRICHMENT", "default": "INTERNAL_ENRICHMENT", "type": "string"}
    properties["MALBEACON_API_KEY"].pop("default", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "malbeacon-connector.config.schema.json",
        "type": "object",
        "properties": properties,
        "required": required,
        "anyOf": [{"required": ["MALBEACON_API_KEY"]}, {"required": ["MALBEACON_API_KEY_FILE"]}],
        "additionalProperties": True,
    }


def render() -> str:
    """The schema file's expected content."""
    return json.dumps(config_schema(), indent=2) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_PATH
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
