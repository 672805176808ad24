"""The simulator checked against real kubelets: the same experiment, the same timings.

Each file in tests/realnodes/calibration/ runs unchanged on sim (its `cluster.sim.timings`
are the real nodes' shortened ones) and on the real nodes (`--backend kubernetes`). Per
metric the medians over the trials must agree within the metric's stated tolerance:
`|sim - real| <= max(absolute, relative * real)`. The table of both sides, with the
spread (min-max over trials), is written to results/realnodes/calibration-<file>.md;
docs/calibration.md records a run of it and says which side is wrong where they differ.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from chaoslab.results import RunData, TrialData, read_run
from tests.engine.conftest import chaoslab_command
from tests.experiments.lessons import completed, failures_by_class, fault_times, first_event_after, summary_rows
from tests.realnodes.conftest import REPO, RUN_TIMEOUT_SECONDS

pytestmark = pytest.mark.realnodes

CALIBRATION = Path(__file__).resolve().parent / "calibration"


@dataclass(frozen=True)
class Metric:
    """One number per trial, and how close sim must come to real."""

    name: str
    of_trial: Callable[[RunData, TrialData], float]
    absolute: float  # tolerance in the metric's unit
    relative: float  # tolerance as a share of the real value
    # Why sim is known to be wrong here (docs/calibration.md): then the test asserts that
    # they still disagree, so a fix of sim shows up as a failure that moves the metric back.
    known_disagreement: str | None = None

    def agrees(self, sim: float, real: float) -> bool:
        if math.isnan(sim) or math.isnan(real):
            return math.isnan(sim) and math.isnan(real)
        return abs(sim - real) <= max(self.absolute, self.relative * abs(real))


def _summary(column: str) -> Callable[[RunData, TrialData], float]:
    def read(run: RunData, trial: TrialData) -> float:
        rows = summary_rows(run)
        return float(rows[rows["trial"] == trial.id][column].iloc[0])

    return read


def _after_fault(kind: str) -> Callable[[RunData, TrialData], float]:
    def read(run: RunData, trial: TrialData) -> float:
        (fault,) = fault_times(trial)
        return first_event_after(trial, kind, fault)

    return read


def _failed(kind: str | None) -> Callable[[RunData, TrialData], float]:
    def read(run: RunData, trial: TrialData) -> float:
        assert trial.info.measure_start is not None and trial.info.measure_end is not None
        classes = failures_by_class(trial, float(trial.info.measure_start), float(trial.info.measure_end))
        return float(sum(classes.values()) if kind is None else classes[kind])

    return read


SECONDS = {"absolute": 1.5, "relative": 0.3}
# Failed-request counts depend on the load's pace during the outage: within half.
COUNTS = {"absolute": 10.0, "relative": 0.5}
# After a pod delete sim refuses too often (docs/calibration.md, "Where they disagree").
STALE_ENDPOINT = (
    "a deleted pod's address black-holes on both sides now (the kernel Service: the pod's IP "
    "goes with it while the rules still route to it, so each client that meets it waits its "
    "timeout once); but sim's rules follow the endpoints after 50 ms (endpointPropagationDelay), "
    "kube-proxy's on real nodes later, so on sim fewer users meet the stale rule and the rest "
    "are refused by the Service without endpoints and retry, many times"
)

POD_DELETE = (
    Metric("time to recover (s)", _summary("time_to_recover_s"), **SECONDS),
    # Not compared: the error window. On real nodes it is bimodal (0.35, 2.3 and 0.4 s in
    # one run of three trials; 2.5 s median in another): while every user waits out its
    # timeout on the deleted pod's address (STALE_ENDPOINT) no request is sent, so no
    # failure marks the rest of the outage. Time to recover covers it in both runs.
    Metric("replacement Ready, capacity back (s)", _summary("capacity_recovered_s"), **SECONDS),
    Metric("failed requests", _failed(None), **COUNTS, known_disagreement=STALE_ENDPOINT),
    Metric("refused requests", _failed("refused"), **COUNTS, known_disagreement=STALE_ENDPOINT),
    # About one per load user (10) on real nodes: each waits out its timeout once.
    Metric("timed-out requests", _failed("timeout"), absolute=3.0, relative=0.5),
)
NODE_CRASH = (
    Metric("node NotReady after the crash (s)", _after_fault("node_not_ready"), **SECONDS),
    Metric("pod evicted after the crash (s)", _after_fault("pod_evicted"), **SECONDS),
    Metric("replacement Ready, capacity back (s)", _summary("capacity_recovered_s"), **SECONDS),
    # Not compared: the error window. On real nodes some trials keep failing (timeouts)
    # well after the dead pod's endpoint is gone (measured 8.6 and 19.2 s against sim's
    # 7.0-8.4 s); until that is explained the spread is too wide for a stated tolerance.
    Metric("failed requests", _failed(None), **COUNTS),
)


def run_on_sim(path: Path, out_root: Path) -> RunData:
    proc = subprocess.run(
        chaoslab_command("run", str(path), "--out", str(out_root), "--no-images"),
        capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode in (0, 1), proc.stderr[-5000:]
    (folder,) = [p for p in out_root.iterdir() if p.is_dir()]
    run = read_run(folder)
    completed(run)
    return run


def per_trial(run: RunData, metrics: Sequence[Metric]) -> dict[str, list[float]]:
    return {m.name: [m.of_trial(run, trial) for trial in run.trials] for m in metrics}


def _median(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.median(finite) if len(finite) == len(values) and finite else math.nan


def _shown(values: Sequence[float]) -> str:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return "never"
    spread = f" ({min(finite):.1f}-{max(finite):.1f})" if len(finite) > 1 else ""
    never = f", {len(values) - len(finite)} never" if len(finite) < len(values) else ""
    return f"{_median(finite):.1f}{spread}{never}"


def calibration_table(name: str, metrics: Sequence[Metric], sim: Mapping[str, list[float]], real: Mapping[str, list[float]]) -> str:
    lines = [f"### {name}", "", "| metric | sim median (min-max) | real median (min-max) | tolerance | agree |", "|---|---|---|---|---|"]
    for metric in metrics:
        agree = metric.agrees(_median(sim[metric.name]), _median(real[metric.name]))
        tolerance = f"max({metric.absolute:g}, {metric.relative:.0%} of real)"
        verdict = "yes" if agree else ("no (known: sim)" if metric.known_disagreement else "NO")
        lines.append(f"| {metric.name} | {_shown(sim[metric.name])} | {_shown(real[metric.name])} | {tolerance} | {verdict} |")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("file", "metrics"), [("pod-delete.yaml", POD_DELETE), ("node-crash.yaml", NODE_CRASH)])
def test_sim_agrees_with_real_nodes(file: str, metrics: Sequence[Metric], run_on_nodes, tmp_path: Path) -> None:
    path = CALIBRATION / file
    sim = per_trial(run_on_sim(path, tmp_path / "sim"), metrics)
    real = per_trial(run_on_nodes(path).run, metrics)
    table = calibration_table(path.stem, metrics, sim, real)
    folder = REPO / "results" / "realnodes"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"calibration-{path.stem}.md").write_text(table)
    print(table)
    agree = {m.name: m.agrees(_median(sim[m.name]), _median(real[m.name])) for m in metrics}
    disagree = [m.name for m in metrics if not agree[m.name] and m.known_disagreement is None]
    assert not disagree, f"sim and real nodes disagree on {disagree}:\n{table}"
    fixed = [m.name for m in metrics if agree[m.name] and m.known_disagreement is not None]
    assert not fixed, f"sim now agrees on {fixed}, known to disagree: drop known_disagreement there\n{table}"
