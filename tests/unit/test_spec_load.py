"""Loading experiment files: the canonical example, --set overrides, YAML edge cases.

Behaviour a user relies on: the example means what it says, overrides reach the right
field and their mistakes name the override, hostile or odd YAML gets a one-line answer.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from chaoslab.errors import SpecError, SpecProblem
from chaoslab.spec import PodDeleteFault
from chaoslab.specload import MAX_FILE_BYTES, load_experiment, parse_override

ROOT = Path(__file__).resolve().parents[2]
CANONICAL = ROOT / "experiments" / "web-pod-delete.yaml"
VALID = ROOT / "tests" / "fixtures" / "valid"


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(path: Path, overrides: tuple[str, ...] = ()) -> list[SpecProblem]:
    with pytest.raises(SpecError) as caught:
        load_experiment(path, overrides)
    return caught.value.problems


def only_problem(path: Path, overrides: tuple[str, ...] = ()) -> SpecProblem:
    problems = problems_of(path, overrides)
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


# --- the canonical example -------------------------------------------------------------


def test_canonical_example_means_what_it_says() -> None:
    e = load_experiment(CANONICAL)
    assert e.name == "web-pod-delete"
    assert e.cluster.backend == "sim"
    assert e.cluster.sim.nodes == 3
    assert e.cluster.sim.timings.node_monitor_grace_period == 50.0
    w = e.workload
    assert (w.name, w.image, w.replicas, w.port) == ("web", "chaoslab/echo", 3, 8080)
    assert w.readiness_probe is not None
    assert w.readiness_probe.http_get.path == "/readyz"
    assert (w.readiness_probe.period_seconds, w.readiness_probe.failure_threshold) == (1, 1)
    # Unset probe fields keep the Kubernetes defaults.
    assert (w.readiness_probe.timeout_seconds, w.readiness_probe.success_threshold) == (1, 1)
    assert (w.toleration_seconds, w.termination_grace_period_seconds) == (300, 30)
    assert (w.app.latency_ms, w.app.startup_seconds) == (5, 1.5)
    assert (e.load.users, e.load.spawn_rate) == (20, 10)
    assert (e.load.wait_time.min, e.load.wait_time.max, e.load.timeout) == (0.05, 0.1, 2.0)
    assert [(r.path, r.weight) for r in e.load.effective_requests()] == [("/", 1)]
    assert (e.timeline.warmup, e.timeline.duration, e.timeline.cooldown) == (5.0, 40.0, 2.0)
    (fault,) = e.faults
    assert isinstance(fault, PodDeleteFault)
    assert (fault.at, fault.target.count, fault.grace_period_seconds) == (15.0, 1, 0)
    assert e.measure.bucket == pytest.approx(0.1)
    assert (e.measure.slo.availability, e.measure.slo.window) == (0.99, 3.0)
    assert e.measure.recovery_budget == 30.0
    assert e.sweep == {"workload.replicas": [1, 2, 3]}
    assert (e.trials, e.seed) == (2, 42)


def test_alternatives_named_in_the_canonical_comments_are_valid() -> None:
    percent = load_experiment(CANONICAL, ["faults.0.target={percent: 50%}"])
    assert percent.faults[0].target.percent == 0.5
    node = load_experiment(CANONICAL, ["faults.0={at: 15s, action: node-crash, target: {name: node-2}}"])
    assert node.faults[0].target.name == "node-2"
    real = load_experiment(
        CANONICAL,
        [
            "cluster.backend=kubernetes",
            "cluster.kubernetes={context: minikube, namespace: chaoslab-demo, allowContexts: [minikube]}",
        ],
    )
    assert real.cluster.kubernetes.allow_contexts == ["minikube"]


def test_loaded_experiments_are_immutable() -> None:
    e = load_experiment(CANONICAL)
    with pytest.raises(ValidationError):
        e.workload.replicas = 5  # type: ignore[misc]


# --- --set overrides -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trials=1", ("trials", 1)),
        ("workload.replicas=3", ("workload.replicas", 3)),
        ("faults.0.at=10s", ("faults.0.at", "10s")),
        ("sweep={}", ("sweep", {})),
        ("sweep.workload.replicas=[1, 2]", ("sweep.workload.replicas", [1, 2])),
        ("description=a=b", ("description", "a=b")),
        ("measure.probe=", ("measure.probe", None)),
        (" load.users = 5 ", ("load.users", 5)),
        ("workload.name='007'", ("workload.name", "007")),
    ],
)
def test_parse_override_reads_the_value_as_yaml(text: str, expected: tuple[str, object]) -> None:
    assert parse_override(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("trials", "expected PATH=VALUE"),
        ("=3", "expected PATH=VALUE"),
        ("name=[1, 2", "invalid YAML"),
        ("name=!!python/object/apply:os.system [ls]", "not allowed"),
        ("name=a\x00b", "NUL"),
    ],
)
def test_parse_override_rejects_naming_the_override(text: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_override(text)
    (problem,) = caught.value.problems
    assert problem.file == f"--set {text}"
    assert words in problem.message


def test_overrides_reach_fields_in_either_spelling_and_list_items() -> None:
    e = load_experiment(
        CANONICAL,
        [
            "trials=1",
            "sweep={}",
            "workload.replicas=1",
            "load.spawn_rate=5",
            "faults[0].at=10s",
            "timeline.duration=20s",
        ],
    )
    assert (e.trials, e.sweep, e.workload.replicas, e.load.spawn_rate) == (1, {}, 1, 5)
    assert (e.faults[0].at, e.timeline.duration) == (10.0, 20.0)


def test_an_override_of_a_swept_field_runs_that_value_only_and_says_so() -> None:
    notes: list[str] = []
    e = load_experiment(CANONICAL, ["workload.replicas=1"], on_note=notes.append)
    assert (e.sweep, e.workload.replicas) == ({}, 1)
    assert notes == ["--set workload.replicas=1 replaces the file's sweep of workload.replicas over [1, 2, 3]"]
    # Setting the whole workload decides the fields inside it too; a sweep entry set
    # through `sweep.` is a sweep, not an override of the field.
    notes.clear()
    e = load_experiment(CANONICAL, ["sweep.load.users=[5, 10]", "workload={name: api, replicas: 2}"], on_note=notes.append)
    assert e.sweep == {"load.users": [5, 10]} and (e.workload.name, e.workload.replicas) == ("api", 2)
    assert len(notes) == 1 and "sweep of workload.replicas" in notes[0]
    notes.clear()
    assert load_experiment(CANONICAL, ["sweep.workload.replicas=[2, 4]"], on_note=notes.append).sweep == {"workload.replicas": [2, 4]}
    assert notes == []


def test_overrides_create_missing_sections_and_set_sweep_entries() -> None:
    e = load_experiment(
        CANONICAL,
        ["measure.probe.interval=50ms", "sweep.load.users=[5, 10]", r"sweep.workload\.replicas=[2]"],
    )
    assert e.measure.probe is not None and e.measure.probe.interval == 0.05
    assert e.sweep == {"workload.replicas": [2], "load.users": [5, 10]}


@pytest.mark.parametrize(
    ("override", "path", "words"),
    [
        ("workload.replicas=abc", "workload.replicas", "expected an integer, got 'abc'"),
        ("worklod.replicas=1", "worklod.replicas", "did you mean 'workload'?"),
        ("faults.3.at=1s", "faults.3.at", "faults has 1 item(s)"),
        ("faults.0.replicas=3", "faults.0.replicas", "faults[0] (pod-delete) has no field 'replicas'"),
        ("workload.replicas.x=1", "workload.replicas.x", "is a single value"),
        ("faults[0].at=50s", "faults[0].at", "at or after the end of the measurement"),
        ("load.waitTime.min=1s", "load.waitTime", "min (1s) must not be above max"),
        ("sweep.workload.replicas=[1, x]", "sweep.workload.replicas[1]", "'x' is not valid"),
        ("faults.0.action=scale", "faults[0].replicas", "missing (required for action scale)"),
    ],
)
def test_override_problems_name_the_override(override: str, path: str, words: str) -> None:
    problems = problems_of(CANONICAL, ("trials=1", override))
    matching = [p for p in problems if p.path == path and words in p.message]
    assert matching, "\n".join(map(str, problems))
    assert matching[0].file == f"--set {override}"
    assert matching[0].line is None
    assert str(matching[0]).startswith(f"--set {override}: {path}: ")


def test_a_problem_an_override_causes_elsewhere_points_at_the_file_line() -> None:
    problem = only_problem(CANONICAL, ("timeline.duration=10s",))
    assert (problem.file, problem.line, problem.path) == (str(CANONICAL), 38, "faults[0].at")
    assert "timeline.duration: 10s" in problem.message


# --- sweeps ----------------------------------------------------------------------------


def test_a_swept_value_that_breaks_a_cross_field_check_points_at_the_sweep_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: sweep-at
        workload: {replicas: 2}
        timeline: {duration: 40s}
        faults:
          - {at: 10s, action: pod-delete}
        sweep:
          faults.0.at:
            - 10s
            - 50s
        """,
    )
    problem = only_problem(path)
    assert (problem.line, problem.path) == (9, "sweep.faults.0.at[1]")
    assert "faults[0].at: 50s is at or after the end" in problem.message


@pytest.mark.parametrize(
    ("sweep", "words"),
    [
        ("{trials: [1, 2]}", "trials cannot be swept"),
        ("{workload: [{replicas: 1}], workload.replicas: [2]}", "overlaps with the sweep path 'workload'"),
        ("{workload.replicas: []}", "expected at least one value"),
        ("{faults.2.at: [1s]}", "faults has 1 item(s)"),
        (
            "{load.users: [1,2,3,4,5,6,7,8,9,10], load.spawnRate: [1,2,3,4,5,6,7,8,9,10], "
            "workload.replicas: [1,2,3,4,5,6,7,8,9,10,11]}",
            "expands to 1100 points",
        ),
    ],
)
def test_sweep_mistakes(tmp_path: Path, sweep: str, words: str) -> None:
    path = write(
        tmp_path,
        f"name: s\nworkload: {{replicas: 2}}\nfaults: [{{at: 1s, action: pod-delete}}]\nsweep: {sweep}\n",
    )
    problems = problems_of(path)
    assert any(words in p.message and p.line == 4 for p in problems), "\n".join(map(str, problems))


def test_sweeping_a_whole_section_validates_each_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: probe-or-not
        sweep:
          workload.readinessProbe:
            - null
            - {periodSeconds: 1}
            - {periodSecond: 1}
        """,
    )
    problem = only_problem(path)
    assert (problem.line, problem.path) == (6, "sweep.workload.readinessProbe[2]")
    assert "did you mean 'periodSeconds'?" in problem.message


# --- YAML features and edge cases --------------------------------------------------------


def test_anchors_and_merge_keys_work_and_explicit_keys_win(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: anchors
        workload: {replicas: 3}
        timeline: {duration: 1m}
        faults:
          - &kill {at: 10s, action: pod-delete, target: {count: 1}}
          - <<: *kill
            at: 20s
          - *kill
        """,
    )
    e = load_experiment(path)
    assert [f.at for f in e.faults] == [10.0, 20.0, 10.0]


def test_a_problem_inside_a_merged_mapping_points_at_the_anchor(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: anchors
        base: &base
          replicas: many
        workload:
          <<: *base
        """,
    )
    problems = problems_of(path)
    assert {(p.line, p.path) for p in problems} == {(2, "base"), (3, "workload.replicas")}


def test_duplicate_keys_in_flow_mappings_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "name: d\nload: {users: 5, users: 6}\n")
    problem = only_problem(path)
    assert (problem.line, problem.path) == (2, "load.users")
    assert "duplicate key 'users'" in problem.message


def test_dates_stay_text_and_yaml_11_booleans_as_keys_stay_names(tmp_path: Path) -> None:
    assert load_experiment(write(tmp_path, "name: 2024-01-01\n", "date.yaml")).name == "2024-01-01"
    problem = only_problem(write(tmp_path, "name: x\non: 5\n", "on.yaml"))
    assert (problem.line, problem.path) == (2, "on")
    assert "unknown key 'on'" in problem.message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name: x\nworkload: {replicas: !!int abc}\n", "cannot read 'abc' as !!int"),
        ("name: x\ntrials: !!bool maybe\n", "cannot read 'maybe' as !!bool"),
        ("name: x\ndescription: !!binary aGVsbG8=\n", "!!binary is not allowed"),
        ("name: x\nsweep: !!set {a, b}\n", "!!set is not allowed"),
        ("name: x\ndescription: !custom x\n", "!custom is not allowed"),
        ("name: x\n? [a, b]\n: c\n", "a key must be a plain name"),
        ("name: x\nseed: " + "9" * 5000 + "\n", "cannot read"),
        ('name: x\ndescription: "\x07"\n', "control character (U+0007)"),
    ],
)
def test_odd_yaml_gets_one_located_line(tmp_path: Path, text: str, words: str) -> None:
    problem = only_problem(write(tmp_path, text))
    assert words in problem.message
    assert problem.line == 2


def test_too_large_files_are_rejected_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("name: huge\ndescription: '" + "x" * MAX_FILE_BYTES + "'\n")
    problem = only_problem(path)
    assert "larger than 1 MiB" in problem.message


@pytest.mark.parametrize(
    "text",
    [
        # 20 levels of aliases, each doubling: 2**20 values once expanded.
        "name: x\n"
        + "".join(f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}]\n" if i else "l0: &l0 [a, b]\n" for i in range(21)),
        # Aliases chained to nest deeper than any real file without a deep file.
        "name: x\n" + "".join(f"d{i}: &d{i} [{'*d' + str(i - 1) if i else '0'}]\n" for i in range(60)),
        # Many values without aliases.
        "name: x\nsweep:\n  load.users: [" + ", ".join(["1"] * 30_000) + "]\n",
        "name: x\nx: " + "[" * 100_000,
        "name: x\nx: " + "{a: " * 100_000,
    ],
    ids=["alias-doubling", "alias-depth", "many-values", "deep-flow-lists", "deep-flow-mappings"],
)
def test_hostile_documents_are_rejected_with_one_message(tmp_path: Path, text: str) -> None:
    problem = only_problem(write(tmp_path, text))
    assert any(words in problem.message for words in ("expands to more than", "nested deeper", "more than"))


def test_missing_file_and_directory_are_spec_errors(tmp_path: Path) -> None:
    missing = only_problem(tmp_path / "nope.yaml")
    assert missing.file == str(tmp_path / "nope.yaml")
    assert "cannot read the file" in missing.message
    assert "is a directory" in only_problem(tmp_path).message


def test_locustfile_and_manifests_resolve_from_the_experiment_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "exp"
    shutil.copytree(VALID / "locustfiles", folder / "locustfiles")
    shutil.copy(VALID / "locustfile.yaml", folder / "locustfile.yaml")
    monkeypatch.chdir(tmp_path)  # not the experiment's folder
    assert load_experiment(folder / "locustfile.yaml").load.locustfile == "locustfiles/simple.py"
    path = write(
        folder, "name: m\nworkload:\n  manifests: [locustfiles/simple.py, k8s/missing.yaml]\n", "m.yaml"
    )
    problem = only_problem(path)
    assert (problem.line, problem.path) == (3, "workload.manifests[1]")
    assert str(folder / "k8s" / "missing.yaml") in problem.message


def test_problems_are_sorted_by_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: X\nload: {users: 0}\nworkload: {replicas: -1}\ntrials: 0\n")
    lines = [p.line for p in problems_of(path)]
    assert lines == sorted(lines) and len(lines) == 4


def test_a_near_miss_fault_option_gets_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nfaults:\n  - at: 1s\n    action: pod-delete\n    gracePeriodSecond: 1\n")
    problem = only_problem(path)
    assert (problem.line, problem.path) == (5, "faults[0].gracePeriodSecond")
    assert "did you mean 'gracePeriodSeconds'?" in problem.message


@pytest.mark.parametrize(
    "raw",
    [b"name: x\r\nworkload:\r\n  replicas: abc\r\n", b"\xef\xbb\xbfname: x\nworkload:\n  replicas: abc\n"],
    ids=["windows-line-ends", "utf8-byte-order-mark"],
)
def test_windows_line_ends_and_a_byte_order_mark_keep_lines_right(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "exp.yaml"
    path.write_bytes(raw)
    problem = only_problem(path)
    assert (problem.line, problem.path) == (3, "workload.replicas")


def test_a_python_tag_on_the_whole_document_is_named(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "!!python/object/apply:os.system\n- ls\n"))
    assert problem.line == 1
    assert "!!python/object/apply:os.system is not allowed" in problem.message


def test_count_is_checked_against_replicas_at_every_firing_after_scales(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: shrink
        workload: {replicas: 3}
        timeline: {duration: 1m}
        faults:
          - {at: 5s, action: pod-delete, every: 10s, target: {count: 2}}
          - {at: 30s, action: scale, replicas: 1}
        """,
    )
    problem = only_problem(path)
    assert (problem.line, problem.path) == (5, "faults[0].target.count")
    assert "the 1 replica(s) desired at 35s (after scale)" in problem.message


def test_a_statefulset_in_manifests_is_declared_there_not_in_workload(tmp_path: Path) -> None:
    (tmp_path / "db.yaml").write_text("kind: Deployment\nmetadata: {name: db}\n", encoding="utf-8")
    path = write(
        tmp_path,
        """
        name: manifests-and-kind
        workload:
          kind: StatefulSet
          manifests: [db.yaml]
        """,
    )
    problem = only_problem(path)
    assert (problem.line, problem.path) == (3, "workload.kind")
    assert "workload.manifests replaces the generated objects" in problem.message


def test_a_volume_sweep_validates_every_point_and_the_plan_names_the_claims(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: volume-sweep
        workload: {name: db, kind: StatefulSet, image: chaoslab/kv, replicas: 2, volume: {type: emptyDir}}
        load: {dataIntegrity: {ordinal: 1}}
        measure: {maxLostWrites: 0}
        sweep:
          workload.volume.type: [volumeClaimTemplate, emptyDir]
        """,
    )
    experiment = load_experiment(path)
    from chaoslab.specstateful import claim_names, stateful_plan_lines

    claim = experiment.with_overrides({"workload.volume.type": "volumeClaimTemplate", "sweep": {}})
    assert claim_names(claim) == ["data-db-0", "data-db-1"]
    assert claim_names(experiment) == []
    lines = stateful_plan_lines(claim)
    assert lines[0] == "StatefulSet db (OrderedReady): pods db-0, db-1"
    assert "claims data-db-0, data-db-1 (1Gi each, the default StorageClass)" in lines[1]
    assert "write unique keys to db-1 through its per-ordinal Service" in lines[2]
