"""What autoscaling did in numbers: the load step, the first scale-up, capacity, the prediction.

A module of its own (re-exported by `chaoslab.analysis`) because these definitions belong
together, over the tables only an autoscaled or staged trial has (autoscaler.csv,
load.stages). Same conventions as the package: pure functions over frames, epoch seconds
in, seconds out, missing is NaN.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from chaoslab.cluster.base import EventKind
from chaoslab.spec import Experiment

# Columns added to summary.csv (see `autoscale_metrics`).
AUTOSCALE_COLUMNS = (
    "spike_s",
    "spike_users",
    "first_scale_up_s",
    "time_to_capacity_s",
    "peak_replicas",
    "predicted_first_scale_up_s",
    "spike_availability",
    "spike_failed_requests",
    "p95_ms_spike",
)

_SCALED_DETAIL = re.compile(r"(?:^|\s)replicas=(\d+)(?: from=(\d+))?")


@dataclass(frozen=True)
class LoadStep:
    """The stage whose users rose most above the level before it (seconds after measure start)."""

    start_s: float
    end_s: float
    users_before: int
    users: int


def load_steps(experiment: Experiment) -> pd.DataFrame:
    """`load.stages` as a step function: columns start_s, end_s, users (warmup level first, from -inf).

    A trial without stages has one row: `load.users` throughout.
    """
    load = experiment.load
    rows = [(-math.inf, 0.0, load.users)]
    start = 0.0
    for stage in load.stages or ():
        rows.append((start, start + stage.duration, stage.users))
        start += stage.duration
    rows[-1] = (rows[-1][0], math.inf, rows[-1][2])
    return pd.DataFrame(rows, columns=["start_s", "end_s", "users"])


def load_spike(experiment: Experiment) -> LoadStep | None:
    """The largest rise of users from one stage to the next (the first, on a tie); None if none rises.

    It ends where that stage ends, or at the end of the measurement for the last stage.
    """
    steps = load_steps(experiment)
    best: LoadStep | None = None
    for previous, current in zip(steps.itertuples(index=False), steps.iloc[1:].itertuples(index=False)):
        rise = int(current.users) - int(previous.users)
        if rise > 0 and (best is None or rise > best.users - best.users_before):
            end = min(float(current.end_s), experiment.timeline.duration)
            best = LoadStep(float(current.start_s), end, int(previous.users), int(current.users))
    return best


def scale_events(events: pd.DataFrame) -> pd.DataFrame:
    """The HPA's changes: columns ts, replicas, previous (from `hpa_scaled` events), in time order.

    `previous` is the event's `from=` (sim), else the replicas of the event before it
    (a real HPA's event names only the new size); NaN for a first event without `from=`.
    """
    columns = {"ts": pd.Series(dtype=float), "replicas": pd.Series(dtype=float), "previous": pd.Series(dtype=float)}
    if not len(events):
        return pd.DataFrame(columns)
    scaled = events[events["kind"] == EventKind.HPA_SCALED.value]
    found = []
    for ts, detail in zip(pd.to_numeric(scaled["ts"], errors="coerce"), scaled["detail"].astype(str)):
        match = _SCALED_DETAIL.search(detail)
        if match and not math.isnan(ts):
            found.append((float(ts), float(match.group(1)), float(match.group(2)) if match.group(2) else math.nan))
    found.sort(key=lambda row: row[0])
    rows = []
    for index, (ts, replicas, previous) in enumerate(found):
        if math.isnan(previous) and index:
            previous = found[index - 1][1]
        rows.append((ts, replicas, previous))
    return pd.DataFrame(rows, columns=["ts", "replicas", "previous"]) if rows else pd.DataFrame(columns)


def first_scale_up(events: pd.DataFrame, after: float, end: float) -> float:
    """Seconds from `after` (epoch) to the HPA's first scale-up in (after, end]; NaN if none."""
    scaled = scale_events(events)
    rising = (scaled["replicas"] > scaled["previous"]) | scaled["previous"].isna()
    up = scaled[rising & (scaled["ts"] > after) & (scaled["ts"] <= end)]
    return float(up["ts"].iloc[0] - after) if len(up) else math.nan


def time_to_capacity(endpoints: pd.DataFrame, events: pd.DataFrame, after: float, end: float) -> float:
    """Seconds from `after` until ready endpoints first reach the most replicas the HPA set in (after, end].

    "Enough capacity" is the HPA's own answer to the load: the highest count it asked for
    in the window. NaN when it did not scale up in the window, or the endpoints never got
    there before `end`. `endpoints` is `analysis.ready_endpoints`.
    """
    scaled = scale_events(events)
    window = scaled[(scaled["ts"] > after) & (scaled["ts"] <= end)]
    first_previous = float(window["previous"].iloc[0]) if len(window) else math.nan
    if not len(window) or not len(endpoints) or (not math.isnan(first_previous) and window["replicas"].max() <= first_previous):
        return math.nan
    goal = int(window["replicas"].max())
    ts = endpoints["ts"].to_numpy(dtype=float)
    ready = endpoints["ready"].to_numpy(dtype=float)
    reached = np.flatnonzero((ts > after) & (ts <= end) & (ready >= goal))
    return float(ts[reached[0]] - after) if len(reached) else math.nan


def expected_replicas(
    autoscaler: pd.DataFrame, tolerance: float, min_replicas: int, max_replicas: int | None
) -> pd.DataFrame:
    """What the algorithm asks for from each measured utilisation: columns ts, expected.

    expected = ceil(ready pods x utilisation / target), or the current count within the
    tolerance, bounded by [minReplicas, maxReplicas] (maxReplicas None: unbounded above,
    to show what a capped HPA wanted): the documented formula applied to what was
    measured, before the behaviour (stabilization, policies) holds it back. NaN where the
    evaluation had no metric. Where the pods that counted are not known (a real HPA's
    status does not say: autoscaler.csv from the kubernetes backend), the current count
    stands in for them, which is exact while every pod is ready and has a metric.
    """
    if not len(autoscaler):
        return pd.DataFrame({"ts": pd.Series(dtype=float), "expected": pd.Series(dtype=float)})
    utilization = pd.to_numeric(autoscaler["utilization"], errors="coerce").to_numpy(dtype=float)
    target = pd.to_numeric(autoscaler["target"], errors="coerce").to_numpy(dtype=float)
    current = pd.to_numeric(autoscaler["current"], errors="coerce").to_numpy(dtype=float)
    ready = pd.to_numeric(autoscaler["ready"], errors="coerce").to_numpy(dtype=float) if "ready" in autoscaler.columns else np.full(len(current), np.nan)
    ready = np.where(np.isnan(ready), current, ready)
    ratio = utilization / target
    raw = np.where(np.abs(1.0 - ratio) <= tolerance, current, np.ceil(ratio * ready - 1e-9))
    expected = np.where(np.isnan(ratio), np.nan, np.clip(raw, min_replicas, max_replicas if max_replicas is not None else np.inf))
    return pd.DataFrame({"ts": pd.to_numeric(autoscaler["ts"], errors="coerce").to_numpy(dtype=float), "expected": expected})


def predicted_first_scale_up(metrics_resolution: float, sync_period: float) -> float:
    """The longest the algorithm can take from a load step to its first scale-up, seconds.

    A pod's CPU rate covers the window between its last two scrapes: the first window wholly
    after the step starts within one `metrics_resolution` of it and closes one later, and the
    next evaluation comes within `sync_period`: 2 x 15 s + 15 s = 45 s with the defaults. A
    step large enough to push a partly loaded window past the tolerance is seen one scrape
    earlier (within metrics_resolution + sync_period). Pods still have to start after that.
    """
    return 2 * metrics_resolution + sync_period


def users_over_time(load: pd.DataFrame, measure_start: float, measure_end: float) -> pd.DataFrame:
    """Locust users per load bucket inside the measurement: columns t_s (s after measure start), users.

    `users` in load.csv is the count running when the bucket closed (stream.py), as our
    listener saw it, whatever drove it: load.users, load.stages or a locustfile's own shape.
    """
    if not len(load):
        return pd.DataFrame({"t_s": pd.Series(dtype=float), "users": pd.Series(dtype=float)})
    ts = pd.to_numeric(load["ts"], errors="coerce").to_numpy(dtype=float)
    users = pd.to_numeric(load["users"], errors="coerce").to_numpy(dtype=float)
    inside = (ts >= measure_start) & (ts < measure_end) & ~np.isnan(users)
    order = np.argsort(ts[inside], kind="stable")
    return pd.DataFrame({"t_s": (ts[inside] - measure_start)[order], "users": users[inside][order]})


def autoscaler_over_time(autoscaler: pd.DataFrame, measure_start: float) -> pd.DataFrame:
    """autoscaler.csv with t_s (s after measure start) and numeric columns, in time order."""
    numeric = ("ts", "current", "desired", "recommendation", "utilization", "target", "ready", "unready", "missing")
    frame = autoscaler.copy()
    for column in numeric:
        frame[column] = pd.to_numeric(frame[column], errors="coerce") if column in frame.columns else np.nan
    frame = frame.sort_values("ts", kind="stable").reset_index(drop=True)
    frame["t_s"] = frame["ts"] - measure_start
    return frame
