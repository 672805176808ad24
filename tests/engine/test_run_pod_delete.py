"""`chaoslab run` end to end on sim: one pod deleted under real Locust load."""

from __future__ import annotations

import html

import pytest

from tests.engine.conftest import EXPERIMENTS

pytestmark = pytest.mark.slow


def _availability(load) -> float:
    requests = load["requests"].sum()
    return 1.0 - load["failures"].sum() / requests


def test_one_replica_fails_and_three_replicas_stay_available(run_cli) -> None:
    result = run_cli(EXPERIMENTS / "pod-delete.yaml", "--set", "sweep={workload.replicas: [1, 3]}")
    assert result.code in (0, 1), result.stderr
    run = result.results()
    assert run.status == "completed"
    by_replicas = {t.params["workload.replicas"]: t for t in run.trials}
    assert set(by_replicas) == {1, 3}

    one, three = by_replicas[1], by_replicas[3]
    for trial in (one, three):
        assert trial.info.status == "completed"
        assert len(trial.faults) == 1 and trial.faults.iloc[0]["action"] == "pod-delete"
        assert trial.load["requests"].sum() > 200, "Locust should have sent real load"

    # One replica: the only pod is gone until its replacement starts and turns ready.
    assert one.load["failures"].sum() > 10
    assert _availability(one.load) < 0.97
    # Three replicas: the Service routes around the deleted pod.
    assert _availability(three.load) >= 0.99

    # The summary and the exit code agree with what was measured.
    summary = (result.run_dir() / "summary.csv").read_text()
    assert "availability" in summary.splitlines()[0]
    assert result.code == 1  # replicas=1 misses the 99 % SLO


def test_same_seed_picks_the_same_targets(run_cli) -> None:
    first = run_cli(EXPERIMENTS / "pod-delete.yaml", "--set", "timeline.duration=4s")
    second = run_cli(EXPERIMENTS / "pod-delete.yaml", "--set", "timeline.duration=4s")
    targets = []
    for result in (first, second):
        assert result.code in (0, 1), result.stderr
        faults = result.results().trials[0].faults
        targets.append(list(faults["targets"]))
    assert targets[0] == targets[1]
    assert targets[0][0], "a pod was targeted"


@pytest.mark.parametrize(
    ("mode", "said", "url"),
    [
        ("nftables", "kernel: kube-proxy's nftables rules", "http://10.96.0.11"),
        ("userspace", "user-space proxy on 127.0.0.1 (cluster.sim.proxyMode is userspace)", "http://127.0.0.1:"),
    ],
)
def test_the_run_and_its_report_say_which_service_path_it_took(run_cli, mode, said, url) -> None:
    result = run_cli(
        EXPERIMENTS / "pod-delete.yaml", "--set", "timeline.duration=4s", "--set", f"cluster.sim.proxyMode={mode}"
    )
    assert result.code in (0, 1), result.stderr
    run = result.results()
    assert run.journal["service_network"].startswith(said)
    assert run.journal["target_url"].startswith(url)
    # Real load went through that Service and was measured.
    assert run.trials[0].load["requests"].sum() > 50
    report = (result.run_dir() / "report.html").read_text()
    assert "<b>service</b>" in report and html.escape(said.split(" (")[0]) in report
