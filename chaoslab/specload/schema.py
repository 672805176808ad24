"""The JSON Schema of the experiment file format (`chaoslab schema`), for editors.

Generated from the pydantic model, so it cannot drift from what `load_experiment` accepts
field by field; the checks across fields are `chaoslab validate`'s alone.
"""

from __future__ import annotations

from typing import Any

from chaoslab.spec import Experiment

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _strip_titles(node: Any) -> Any:
    """Drop pydantic's generated property titles ("Graceperiodseconds"): noise in editors."""
    if isinstance(node, dict):
        cleaned = {}
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                cleaned[key] = {
                    name: _strip_titles({k: v for k, v in spec.items() if k != "title"})
                    if isinstance(spec, dict)
                    else spec
                    for name, spec in value.items()
                }
            else:
                cleaned[key] = _strip_titles(value)
        return cleaned
    if isinstance(node, list):
        return [_strip_titles(item) for item in node]
    return node


def experiment_json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of the experiment file format, camelCase keys.

    It checks shape and types (unknown keys, wrong types, unknown actions); the checks
    across fields (faults within the timeline, counts against replicas) need
    `chaoslab validate`.
    """
    schema = _strip_titles(Experiment.model_json_schema(by_alias=True, mode="validation"))
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "chaoslab experiment",
        **{k: v for k, v in schema.items() if k != "title"},
    }
