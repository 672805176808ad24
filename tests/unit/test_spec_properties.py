"""No input makes the loader crash or hang: it returns an Experiment or raises SpecError.

Three kinds of input: arbitrary YAML documents (dumped from generated data), arbitrary
text and bytes, and the canonical example with one part replaced, deleted or added, which
reaches the deep validation and cross-field checks.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaoslab.errors import SpecError
from chaoslab.plan import build_plan, render_plan
from chaoslab.spec import Experiment
from chaoslab.specload import load_experiment

ROOT = Path(__file__).resolve().parents[2]
CANONICAL = ROOT / "experiments" / "web-pod-delete.yaml"
CANONICAL_DATA: dict[str, Any] = yaml.safe_load(CANONICAL.read_text())

# A deadline far above the milliseconds a load takes, so only a hang or a pathological
# slowdown fails, not a busy shared machine.
LOADER_SETTINGS = settings(
    max_examples=150,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Words from the model, so generated documents hit real fields, not only unknown keys.
FIELD_WORDS = [
    "name",
    "workload",
    "replicas",
    "faults",
    "at",
    "action",
    "target",
    "count",
    "percent",
    "sweep",
    "timeline",
    "duration",
    "load",
    "users",
    "waitTime",
    "min",
    "max",
    "measure",
    "slo",
    "cluster",
    "sim",
    "nodes",
    "every",
    "repeat",
    "pod-delete",
    "node-crash",
    "scale",
    "workload.replicas",
    "readinessProbe",
    "httpGet",
    "path",
    "trials",
    "seed",
    "locustfile",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from([*FIELD_WORDS, "15s", "250ms", "1m30s", "50%", "0.99", "node-2", "-1", ""]),
)
KEYS = st.one_of(st.sampled_from(FIELD_WORDS), st.text(min_size=1, max_size=8))
DATA = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(KEYS, children, max_size=5),
    ),
    max_leaves=25,
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spec-properties")


def _load_outcome(path: Path) -> Experiment | SpecError:
    try:
        return load_experiment(path)
    except SpecError as exc:
        return exc


def _yaml_line_count(raw: bytes) -> int:
    """Lines as YAML counts them: \r\n, \r, \n, NEL, LS and PS all end a line."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.count(b"\n") + 1
    return len(re.findall("\r\n|[\r\n\x85\u2028\u2029]", text)) + 1


def _assert_well_formed(outcome: Experiment | SpecError, path: Path) -> None:
    if isinstance(outcome, Experiment):
        # A file the loader accepts must also plan and render.
        render_plan(build_plan(outcome))
        return
    assert outcome.problems
    source = path.read_bytes()
    lines = _yaml_line_count(source)
    for problem in outcome.problems:
        text = str(problem)
        assert "\n" not in problem.message
        assert problem.line is None or 1 <= problem.line <= lines
        for leak in ("Input should", "[type=", "function-after", "function-before"):
            # (unless the file itself says it: values are echoed back)
            assert leak not in text or leak.encode() in source


@LOADER_SETTINGS
@given(DATA)
def test_any_yaml_document_loads_or_is_reported(folder: Path, document: Any) -> None:
    path = folder / "document.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    _assert_well_formed(_load_outcome(path), path)


@LOADER_SETTINGS
@given(st.text(max_size=300))
def test_any_text_loads_or_is_reported(folder: Path, text: str) -> None:
    path = folder / "text.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    _assert_well_formed(_load_outcome(path), path)


@LOADER_SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_load_or_are_reported(folder: Path, raw: bytes) -> None:
    path = folder / "bytes.yaml"
    path.write_bytes(raw)
    _assert_well_formed(_load_outcome(path), path)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into the canonical data (mapping keys and list indices)."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


CANONICAL_PATHS = [p for p in _paths(CANONICAL_DATA) if p]


def _mutate(data: dict[str, Any], path: tuple[Any, ...], how: str, value: Any, key: str) -> dict[str, Any]:
    result = copy.deepcopy(data)
    parent = result
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "replace":
        parent[last] = value
    elif how == "delete":
        del parent[last]
    elif isinstance(parent[last], dict):
        parent[last][key] = value
    else:
        parent[last] = {key: value}
    return result


@LOADER_SETTINGS
@given(
    path=st.sampled_from(CANONICAL_PATHS),
    how=st.sampled_from(["replace", "delete", "add"]),
    value=DATA,
    key=KEYS,
)
def test_the_canonical_example_with_one_part_changed_loads_or_is_reported(
    folder: Path, path: tuple[Any, ...], how: str, value: Any, key: str
) -> None:
    target = folder / "mutated.yaml"
    target.write_text(yaml.safe_dump(_mutate(CANONICAL_DATA, path, how, value, key), sort_keys=False))
    _assert_well_formed(_load_outcome(target), target)


# Dotted paths people write in sweeps and --set, right and wrong.
DOTTED_PATHS = st.sampled_from(
    [
        "workload.replicas",
        "faults.0.at",
        "faults[0].at",
        "faults.0",
        "faults.1.at",
        "workload",
        "workload.readinessProbe",
        "workload.readiness_probe.period_seconds",
        "faults.0.target.percent",
        "cluster.sim.timings.nodeMonitorPeriod",
        "cluster.sim.nodes",
        "sweep",
        "sweep.load.users",
        "trials",
        "seed",
        "name",
        "load.waitTime.min",
        "timeline.duration",
        "measure.probe.interval",
        "faults.0.action",
        "faults.0.replicas",
        "x.y",
        "",
        "workload..replicas",
        "faults.٣.at",
        "faults[0",
    ]
)


@LOADER_SETTINGS
@given(st.dictionaries(DOTTED_PATHS, st.lists(DATA, max_size=3) | DATA, max_size=3))
def test_any_sweep_loads_or_is_reported(folder: Path, sweep: dict[str, Any]) -> None:
    data = copy.deepcopy(CANONICAL_DATA)
    data["sweep"] = sweep
    target = folder / "sweep.yaml"
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    _assert_well_formed(_load_outcome(target), target)


def _override(path: str, value: Any) -> str:
    return f"{path}={yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix('...').strip()}"


OVERRIDES = st.lists(
    st.one_of(st.builds(_override, DOTTED_PATHS, DATA), st.text(max_size=30)),
    max_size=3,
)


@LOADER_SETTINGS
@given(OVERRIDES)
def test_any_overrides_load_or_are_reported(overrides: list[str]) -> None:
    try:
        experiment = load_experiment(CANONICAL, overrides)
    except SpecError as exc:
        for problem in exc.problems:
            if problem.file.startswith("--set "):
                assert problem.file[len("--set ") :] in overrides
                assert problem.line is None
            else:
                assert problem.file == str(CANONICAL)
        return
    render_plan(build_plan(experiment))
