"""Reading a lesson out of a results folder: the numbers the experiment headers talk about.

Each helper answers one question from the results contract (docs/results.md) alone:
events.csv for what the cluster did, load.csv for what clients saw, summary.csv for the
analysis. Times are epoch seconds in, seconds out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from chaoslab.results import RunData, TrialData

LIBRARY = Path(__file__).resolve().parents[2] / "experiments"


def trials_by(run: RunData, path: str) -> dict[Any, TrialData]:
    """The run's trials keyed by the value of one sweep parameter (one trial per point)."""
    trials: dict[Any, TrialData] = {}
    for trial in run.trials:
        value = trial.params[path]
        key = str(value) if isinstance(value, (dict, list)) or value is None else value
        assert key not in trials, f"expected one trial per {path} value, got two for {key}"
        trials[key] = trial
    return trials


def completed(run: RunData) -> None:
    assert run.status == "completed", run.journal
    for trial in run.trials:
        assert trial.info.status == "completed", (trial.id, trial.info.error)


def summary_rows(run: RunData) -> pd.DataFrame:
    return pd.read_csv(run.path / "summary.csv")


def fault_times(trial: TrialData) -> list[float]:
    """When each fault fired (faults.csv), in order."""
    return sorted(float(ts) for ts in trial.faults["ts"])


def events_of(trial: TrialData, kind: str) -> pd.DataFrame:
    events = trial.events
    return events[events["kind"] == kind].sort_values("ts", kind="stable")


def first_event_after(trial: TrialData, kind: str, after: float, name: str | None = None) -> float:
    """Seconds from `after` to the first `kind` event (of object `name`); NaN when none."""
    events = events_of(trial, kind)
    events = events[events["ts"] >= after]
    if name is not None:
        events = events[events["name"] == name]
    return float(events["ts"].iloc[0]) - after if len(events) else math.nan


def ready_endpoints_over_time(trial: TrialData) -> pd.DataFrame:
    """`ts, ready`: the Service's endpoint count after every endpoint event of the trial."""
    events = trial.events[trial.events["kind"].isin(["endpoint_added", "endpoint_removed"])]
    events = events.sort_values("ts", kind="stable")
    step = events["kind"].map({"endpoint_added": 1, "endpoint_removed": -1})
    return pd.DataFrame({"ts": events["ts"].astype(float), "ready": step.cumsum()})


def min_ready_endpoints(trial: TrialData, start: float, end: float) -> int:
    """The fewest ready endpoints the Service had at any moment of [start, end]."""
    steps = ready_endpoints_over_time(trial)
    before = steps[steps["ts"] <= start]
    at_start = int(before["ready"].iloc[-1]) if len(before) else 0
    inside = steps[(steps["ts"] > start) & (steps["ts"] <= end)]["ready"]
    return min([at_start, *(int(v) for v in inside)])


def measure_window(trial: TrialData) -> tuple[float, float]:
    assert trial.info.measure_start is not None and trial.info.measure_end is not None
    return float(trial.info.measure_start), float(trial.info.measure_end)


def load_between(trial: TrialData, start: float, end: float) -> pd.DataFrame:
    """The load buckets whose requests started in [start, end)."""
    load = trial.load
    ts = load["ts"].astype(float)
    return load[(ts >= start) & (ts < end)]


def successes_per_second(trial: TrialData, start: float, end: float) -> float:
    load = load_between(trial, start, end)
    return float((load["requests"] - load["failures"]).sum()) / (end - start)


def failures_by_class(trial: TrialData, start: float, end: float) -> Mapping[str, int]:
    load = load_between(trial, start, end)
    return {name: int(load[name].sum()) for name in ("refused", "reset", "timeout", "http_5xx", "other")}


def last_failing_bucket(trial: TrialData) -> float:
    """Start of the last load bucket with a failed request; NaN when nothing failed."""
    load = trial.load[trial.load["failures"] > 0]
    return float(load["ts"].astype(float).max()) if len(load) else math.nan
