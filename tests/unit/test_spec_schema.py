"""The JSON Schema of the file format, as editors and generic validators use it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from chaoslab.specload import experiment_json_schema, load_experiment

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "experiments").glob("*.yaml")) + sorted(
    (ROOT / "tests/fixtures/valid").glob("*.yaml")
)
INVALID = ROOT / "tests" / "fixtures" / "invalid"

# Invalid fixtures whose mistake is one of shape or type: a generic validator must catch
# them too. (Cross-field mistakes, such as a fault after the end, need chaoslab validate.)
SHAPE_MISTAKES = [
    "key-unknown-top-level-typo.yaml",
    "key-typo-with-suggestion.yaml",
    "key-snake-case.yaml",
    "type-replicas-is-text.yaml",
    "type-users-not-whole.yaml",
    "type-probe-not-a-mapping.yaml",
    "type-env-value-number.yaml",
    "fault-unknown-action.yaml",
    "fault-option-of-another-action.yaml",
    "fault-missing-at.yaml",
    "fault-scale-without-replicas.yaml",
    "fault-missing-action.yaml",
    "duration-unknown-unit.yaml",
    "duration-negative.yaml",
    "percent-above-100.yaml",
    "percent-not-a-percentage.yaml",
    "range-replicas-above-max.yaml",
    "range-port-zero.yaml",
    "name-not-a-dns-label.yaml",
    "name-missing.yaml",
    "sweep-values-not-a-list.yaml",
    "backend-unknown.yaml",
    "request-method-lowercase.yaml",
    "hostile-top-level-list.yaml",
]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = experiment_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_declares_draft_2020_12_and_camel_case_keys() -> None:
    schema = experiment_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    load = schema["$defs"]["LoadSpec"]["properties"]
    assert "spawnRate" in load and "spawn_rate" not in load
    assert schema["required"] == ["name"]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_and_valid_fixtures_validate(validator: jsonschema.Draft202012Validator, path: Path) -> None:
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize("name", SHAPE_MISTAKES)
def test_shape_and_type_mistakes_fail_the_schema(
    validator: jsonschema.Draft202012Validator, name: str
) -> None:
    document: Any = yaml.safe_load((INVALID / name).read_text())
    assert not validator.is_valid(document)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_the_resolved_experiment_written_to_results_stays_valid(
    validator: jsonschema.Draft202012Validator, path: Path, tmp_path: Path
) -> None:
    # The engine writes results/<run>/experiment.yaml as this dump (nulls included).
    experiment = load_experiment(path)
    dumped = experiment.model_dump(mode="json", by_alias=True)
    assert [e.message for e in validator.iter_errors(dumped)] == []
    # Reloaded from a copy of its folder, so relative paths (locustfile) still resolve.
    folder = tmp_path / "copy"
    shutil.copytree(path.parent, folder)
    copy = folder / path.name
    copy.write_text(yaml.safe_dump(dumped, sort_keys=False))
    assert load_experiment(copy) == experiment
