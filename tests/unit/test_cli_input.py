"""The command line on bad input: the exit code README documents, the file and field
named, and never a traceback. Runs the real `chaoslab` entry point in a subprocess."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.engine.conftest import REPO, chaoslab_command

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CANONICAL = FIXTURES / "valid" / "pod-delete.yaml"
EXIT_INPUT = 2  # README, "Exit codes"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(chaoslab_command(*args), capture_output=True, text=True, timeout=120, cwd=REPO)


def test_validate_reports_every_invalid_fixture_with_exit_2_and_no_traceback() -> None:
    invalid = sorted((FIXTURES / "invalid").glob("*.yaml"))
    result = _cli("validate", *(str(path) for path in invalid))
    assert result.returncode == EXIT_INPUT, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for path in invalid:
        assert f"{path}:" in result.stderr, f"{path.name} is not named on stderr"
    assert result.stdout == ""  # nothing called ok


def test_run_of_an_invalid_file_stops_before_anything_starts(tmp_path: Path) -> None:
    path = FIXTURES / "invalid" / "type-replicas-is-text.yaml"
    result = _cli("run", str(path), "--out", str(tmp_path))
    assert result.returncode == EXIT_INPUT
    assert f"{path}:3: workload.replicas: expected an integer, got 'three'" in result.stderr
    assert "Traceback" not in result.stderr and list(tmp_path.iterdir()) == []


def test_a_bad_set_is_named_as_the_override() -> None:
    result = _cli("run", str(CANONICAL), "--dry-run", "--set", "worklod.replicas=2")
    assert result.returncode == EXIT_INPUT
    assert "--set worklod.replicas=2" in result.stderr and "did you mean 'workload'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_setting_a_swept_field_runs_that_value_and_says_so() -> None:
    experiment = REPO / "experiments" / "web-pod-delete.yaml"
    result = _cli("run", str(experiment), "--dry-run", "--set", "workload.replicas=2")
    assert result.returncode == 0, result.stderr
    assert "replaces the file's sweep of workload.replicas over [1, 2, 3]" in result.stderr
    assert "plan: 1 point x" in result.stdout and "workload: 2 replicas" in result.stdout


def test_report_of_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = _cli("report", str(tmp_path / "missing"))
    assert result.returncode == EXIT_INPUT
    assert str(tmp_path / "missing") in result.stderr and "Traceback" not in result.stderr


def test_validate_and_dry_run_warn_about_a_grace_period_shorter_than_the_heartbeat(tmp_path: Path) -> None:
    path = tmp_path / "flapping.yaml"
    path.write_text(
        "name: flapping\n"
        "cluster: {backend: sim, sim: {timings: {nodeMonitorGracePeriod: 4s}}}\n"
        "workload: {replicas: 2, readinessProbe: {httpGet: {path: /readyz}}}\n"
    )
    expected = "nodeMonitorGracePeriod (4s) is less than 4 x nodeHeartbeatPeriod (10s)"
    validated = _cli("validate", str(path))
    assert validated.returncode == 0, validated.stderr
    assert f"ok {path}" in validated.stdout and expected in validated.stderr.replace("\n", " ")
    planned = _cli("run", str(path), "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert expected in planned.stdout.replace("\n", " ")


def test_dry_run_warns_that_a_scale_fault_fights_the_autoscaler(tmp_path: Path) -> None:
    path = tmp_path / "fight.yaml"
    path.write_text(
        "name: fight\n"
        "workload:\n"
        "  replicas: 2\n"
        "  readinessProbe: {httpGet: {path: /readyz}}\n"
        "  resources: {requests: {cpu: 100m}}\n"
        "  autoscaling: {minReplicas: 1, maxReplicas: 4}\n"
        "faults: [{at: 5s, action: scale, replicas: 3}]\n"
    )
    planned = _cli("run", str(path), "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert "f0 scale to 3 replicas fights workload.autoscaling" in " ".join(planned.stdout.split())
