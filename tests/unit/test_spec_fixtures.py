"""Every fixture: the valid ones load, each invalid one is reported at the right place.

Invalid fixtures are named `<area>-<mistake>.yaml`; the table below is the contract for
each: the line and field a user is pointed to, and words the message must contain.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaoslab.errors import SpecError, SpecProblem
from chaoslab.spec import FAULT_ACTIONS
from chaoslab.specload import load_experiment

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
VALID = FIXTURES / "valid"
INVALID = FIXTURES / "invalid"

# (fixture, line, field path, words in the message). Line None: the file as a whole.
EXPECTED: list[tuple[str, int | None, str, str]] = [
    # YAML syntax
    ("syntax-mapping-in-plain-value.yaml", 4, "", "invalid YAML: mapping values are not allowed"),
    ("syntax-tab-indent.yaml", 3, "", "indent with spaces"),
    ("syntax-unclosed-flow-mapping.yaml", 5, "", "flow mapping at line 4"),
    # wrong types
    ("type-replicas-is-text.yaml", 3, "workload.replicas", "expected an integer, got 'three'"),
    ("type-users-not-whole.yaml", 3, "load.users", "expected a whole number, got 2.5"),
    (
        "type-probe-not-a-mapping.yaml",
        4,
        "workload.readinessProbe",
        "expected a mapping (key: value), got '/readyz'",
    ),
    ("type-env-value-number.yaml", 5, "workload.env[0].value", "expected text, got 4 (put it in quotes"),
    # unknown keys, typos, duplicates
    ("key-unknown-top-level-typo.yaml", 2, "fault", "unknown key 'fault'; did you mean 'faults'?"),
    ("key-typo-with-suggestion.yaml", 4, "workload.replcas", "did you mean 'replicas'?"),
    ("key-snake-case.yaml", 4, "load.spawn_rate", "did you mean 'spawnRate'? (keys are camelCase)"),
    (
        "key-duplicate.yaml",
        5,
        "workload.replicas",
        "duplicate key 'replicas' (first at line 3, again at line 5)",
    ),
    (
        "backend-unknown.yaml",
        3,
        "cluster.backend",
        "expected one of: sim, kubernetes, got 'kubernets' (did you mean 'kubernetes'?)",
    ),
    ("request-method-lowercase.yaml", 5, "load.requests[0].method", "did you mean 'GET'?"),
    # faults
    (
        "fault-unknown-action.yaml",
        6,
        "faults[0].action",
        "unknown action 'podkill' (expected one of: pod-delete, container-kill, node-crash, node-hang, "
        "node-restore, node-drain, scale)",
    ),
    (
        "fault-option-of-another-action.yaml",
        7,
        "faults[0].replicas",
        "'replicas' is not an option of pod-delete (it is an option of scale)",
    ),
    ("fault-missing-at.yaml", 5, "faults[0].at", "missing (required for action pod-delete)"),
    ("fault-scale-without-replicas.yaml", 7, "faults[1].replicas", "missing (required for action scale)"),
    (
        "fault-missing-action.yaml",
        3,
        "faults[0].action",
        "missing (required): the fault's action, one of: pod-delete",
    ),
    (
        "fault-at-after-duration.yaml",
        7,
        "faults[0].at",
        "45s is at or after the end of the measurement (timeline.duration: 40s)",
    ),
    ("fault-repeat-past-end.yaml", 10, "faults[0].repeat", "expected at most 3"),
    ("fault-every-zero.yaml", 7, "faults[0].every", "expected an interval above 0s"),
    (
        "fault-count-above-replicas.yaml",
        8,
        "faults[0].target.count",
        "3 is above workload.replicas (2); expected at most 2",
    ),
    (
        "fault-count-above-replicas-at-sweep-point.yaml",
        7,
        "faults[0].target.count",
        "2 is above workload.replicas (1); expected at most 1 (at sweep point workload.replicas=1)",
    ),
    (
        "fault-node-count-above-nodes.yaml",
        7,
        "faults[0].target.count",
        "3 is above the 2 node(s) of cluster.sim.nodes",
    ),
    (
        "fault-node-name-unknown.yaml",
        7,
        "faults[0].target.name",
        "unknown node 'node2'; did you mean 'node-2'?",
    ),
    ("target-two-selectors.yaml", 7, "faults[0].target", "set exactly one of count, percent or name"),
    # durations, percentages, ranges
    (
        "duration-unknown-unit.yaml",
        4,
        "timeline.duration",
        "expected a duration like 250ms, 30s, 5m, 1h or 1m30s, got '40 sec'",
    ),
    ("duration-negative.yaml", 3, "timeline.warmup", "expected a non-negative duration, got -5"),
    ("percent-above-100.yaml", 3, "measure.slo.availability", "between 0% and 100%, got '120%'"),
    (
        "percent-not-a-percentage.yaml",
        7,
        "faults[0].target.percent",
        "expected a percentage like 99% or 0.99, got '50 percent'",
    ),
    ("range-replicas-above-max.yaml", 3, "workload.replicas", "expected a value of at most 100, got 500"),
    ("range-port-zero.yaml", 3, "workload.port", "expected a value of at least 1, got 0"),
    ("range-bucket-too-small.yaml", 3, "measure.bucket", "between 10ms and 60s"),
    ("name-not-a-dns-label.yaml", 1, "name", "expected a DNS label"),
    ("name-missing.yaml", 1, "name", "missing (required)"),
    # sweep
    (
        "sweep-path-typo.yaml",
        5,
        "sweep.workload.replica",
        "workload has no field 'replica' (did you mean 'replicas'?)",
    ),
    (
        "sweep-value-invalid.yaml",
        5,
        "sweep.workload.replicas[1]",
        "'two' is not valid for workload.replicas: expected an integer",
    ),
    ("sweep-values-not-a-list.yaml", 3, "sweep.workload.replicas", "expected a list, got 3"),
    # other cross-field checks
    ("waittime-min-above-max.yaml", 3, "load.waitTime", "min (2s) must not be above max (0.1s)"),
    ("load-requests-and-locustfile.yaml", 2, "load", "set either requests or locustfile, not both"),
    ("load-locustfile-not-found.yaml", 3, "load.locustfile", "file not found"),
    (
        "fault-container-kill-image-without-shell.yaml",
        7,
        "faults[0].action",
        "container-kill is unsupported for image gcr.io/distroless/static:nonroot",
    ),
    ("load-locustfile-syntax-error.yaml", 3, "load.locustfile", "broken.py:4: Python syntax error"),
    ("load-locustfile-no-user-class.yaml", 3, "load.locustfile", "no_user.py defines no Locust User class"),
    # load stages and autoscaling
    ("load-stages-past-duration.yaml", 6, "load.stages[1].duration", "stage 2 ends at 40s, after the measurement ends (timeline.duration: 30s)"),
    ("load-stages-beside-own-shape.yaml", 4, "load.stages", "defines its own LoadTestShape (Steps)"),
    ("autoscaling-without-cpu-request.yaml", 4, "workload.autoscaling", "needs workload.resources.requests.cpu"),
    ("autoscaling-min-above-max.yaml", 5, "workload.autoscaling", "minReplicas (5) must not be above maxReplicas (3)"),
    ("autoscaling-cpu-request-unreadable.yaml", 4, "workload.resources.requests.cpu", "expected a CPU quantity like 250m"),
    ("autoscaling-policy-type-unknown.yaml", 10, "workload.autoscaling.behavior.scaleUp.policies[0].type", "expected one of: Pods, Percent"),
    ("measure-slo-window-below-bucket.yaml", 6, "measure.slo.window", "100ms is shorter than measure.bucket (500ms)"),
    (
        "pdb-both-fields.yaml",
        4,
        "workload.podDisruptionBudget",
        "set exactly one of minAvailable or maxUnavailable",
    ),
    # stateful workloads (issue 13)
    ("workload-volume-claim-on-deployment.yaml", 6, "workload.volume.type", "a volumeClaimTemplate needs workload.kind: StatefulSet"),
    ("workload-pod-management-policy-on-deployment.yaml", 4, "workload.podManagementPolicy", "only a StatefulSet has a podManagementPolicy"),
    ("workload-emptydir-storage-class.yaml", 6, "workload.volume.storageClassName", "an emptyDir has no storage class"),
    ("workload-volume-size-not-a-quantity.yaml", 5, "workload.volume.size", "expected a storage quantity like 1Gi or 500Mi, got 'one gig'"),
    ("load-data-integrity-ordinal-missing.yaml", 8, "load.dataIntegrity.ordinal", "ordinal 2 does not exist: workload.replicas is 2 (ordinals 0..1)"),
    ("load-data-integrity-on-deployment.yaml", 5, "load.dataIntegrity", "set workload.kind: StatefulSet"),
    ("measure-max-lost-writes-without-data-integrity.yaml", 5, "measure.maxLostWrites", "needs load.dataIntegrity"),
    (
        "sweep-kind-with-ordinal-target.yaml",
        9,
        "faults[0].target.name",
        "'db-0' is a StatefulSet pod name; a Deployment's pods have generated names (db-<hash>-<suffix>), so this "
        "fault would find no pod; use target.count, or workload.kind: StatefulSet (at sweep point workload.kind='Deployment')",
    ),
    ("fault-pod-name-not-an-ordinal.yaml", 9, "faults[0].target.name", "unknown pod 'db-2'; the StatefulSet's pods are db-0, db-1"),
    # hostile YAML
    (
        "hostile-python-tag.yaml",
        3,
        "workload.replicas",
        "the YAML tag !!python/object/apply:os.system is not allowed",
    ),
    ("hostile-alias-bomb.yaml", 2, "", "alias bomb"),
    (
        "hostile-recursive-alias.yaml",
        2,
        "workload.app",
        "an alias refers to a mapping or list that contains it",
    ),
    ("hostile-binary.yaml", 3, "", "binary content (a NUL byte"),
    ("hostile-not-utf8.yaml", 2, "", "not UTF-8 text (byte 0xe9"),
    ("hostile-empty.yaml", 1, "", "the file is empty"),
    ("hostile-only-comments.yaml", 1, "", "the file is empty"),
    (
        "hostile-top-level-list.yaml",
        1,
        "",
        "expected a mapping at the top level (name:, workload:, faults: ...), got a list",
    ),
    ("hostile-top-level-scalar.yaml", 1, "", "got a single value ('just some text')"),
    ("hostile-multi-document.yaml", 2, "", "a second YAML document starts at line 2"),
    ("hostile-deep-nesting.yaml", 3, "", "nested deeper than"),
]


def _problems(path: Path) -> list[SpecProblem]:
    with pytest.raises(SpecError) as caught:
        load_experiment(path)
    return caught.value.problems


def test_every_invalid_fixture_has_an_expectation() -> None:
    on_disk = {p.name for p in INVALID.glob("*.yaml")}
    in_table = {row[0] for row in EXPECTED} | {"many-problems-at-once.yaml"}
    assert on_disk == in_table
    assert len(on_disk) >= 25


@pytest.mark.parametrize(("fixture", "line", "field", "words"), EXPECTED, ids=[row[0] for row in EXPECTED])
def test_invalid_fixture_names_file_line_and_field(
    fixture: str, line: int | None, field: str, words: str
) -> None:
    path = INVALID / fixture
    problems = _problems(path)
    matching = [p for p in problems if p.path == field and words in p.message]
    assert matching, "\n".join(str(p) for p in problems)
    problem = matching[0]
    assert problem.file == str(path)
    assert problem.line == line
    rendered = str(problem)
    assert rendered.startswith(f"{path}:{line}:" if line else f"{path}:")
    # Pydantic's internals never reach a user.
    for leak in ("function-after", "function-before", "pod-delete.", "[type=", "Input should"):
        assert leak not in rendered


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    path = INVALID / "many-problems-at-once.yaml"
    found = {(p.line, p.path) for p in _problems(path)}
    assert found == {
        (3, "workload.replicas"),
        (4, "workload.prot"),
        (6, "load.users"),
        (11, "faults[0].action"),
    }


VALID_FIXTURES = sorted(VALID.glob("*.yaml"))


@pytest.mark.parametrize("path", VALID_FIXTURES, ids=[p.name for p in VALID_FIXTURES])
def test_valid_fixtures_load(path: Path) -> None:
    experiment = load_experiment(path)
    assert experiment.name.startswith("fixture-")


def test_valid_fixtures_cover_every_fault_action_a_locustfile_and_probes() -> None:
    experiments = [load_experiment(path) for path in VALID_FIXTURES]
    actions = {fault.action for e in experiments for fault in e.faults}
    assert actions == set(FAULT_ACTIONS)
    assert any(e.load.locustfile for e in experiments)
    assert any(
        e.workload.readiness_probe and e.workload.liveness_probe and e.workload.pod_disruption_budget
        for e in experiments
    )
    assert any(e.workload.stateful and e.workload.volume and e.load.data_integrity for e in experiments)
