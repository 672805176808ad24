"""Capacity from the cluster's events: desired replicas, ready endpoints, capacity recovery.

The cluster side of recovery (the Service's endpoints back to the desired replicas), as
opposed to the users' side (`service.time_to_recover`): both are reported because a
service can answer again before its capacity is back, and the other way round.

Conventions as in the package docstring (`chaoslab.analysis`): epoch seconds in, seconds
or milliseconds out, a bucket belongs to a window by its end, missing is NaN.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from chaoslab.cluster.base import EventKind

_REPLICAS_DETAIL = re.compile(r"(?:^|[\s,;])replicas=(\d+)")


def _endpoint_pod(name: str) -> str:
    """The pod behind an endpoint event: its name, without an `@host:port` suffix."""
    return name.split("@", 1)[0]


def desired_replicas_over_time(
    events: pd.DataFrame, faults: pd.DataFrame | None, initial: int | None
) -> pd.DataFrame:
    """Desired replicas as a step function: columns ts, desired (count).

    Starts at `initial` (trial.json desired_replicas) and follows `scaled` and
    `hpa_scaled` events (detail `replicas=N`) and `scale` faults (detail `replicas=N`),
    whichever comes first.
    Empty when nothing is known.
    """
    rows: list[tuple[float, int]] = []
    if initial is not None:
        rows.append((-math.inf, int(initial)))
    # hpa_scaled too: on a real cluster the HPA's rescale is only known from its Event.
    scaled_kinds = [EventKind.SCALED.value, EventKind.HPA_SCALED.value]
    sources = [events[events["kind"].isin(scaled_kinds)]] if len(events) else []
    if faults is not None and len(faults) and "action" in faults.columns:
        sources.append(faults[faults["action"].astype(str) == "scale"])
    for source in sources:
        for ts, detail in zip(pd.to_numeric(source["ts"], errors="coerce"), source["detail"].astype(str)):
            match = _REPLICAS_DETAIL.search(detail)
            if match and not math.isnan(ts):
                rows.append((float(ts), int(match.group(1))))
    rows.sort(key=lambda row: row[0])
    return pd.DataFrame(rows, columns=["ts", "desired"])


def ready_endpoints(
    events: pd.DataFrame,
    *,
    measure_start: float | None,
    desired_replicas: int | None,
    faults: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Ready endpoints (pods the Service routes to) and desired replicas over time.

    Columns: ts (epoch s), ready (count), desired (count, NaN when unknown); one row per
    moment either changes, and one at `measure_start`. Counted from `endpoint_added` /
    `endpoint_removed` events per pod (a repeated event for a pod already in that state
    changes nothing). When the events hold no endpoint change up to `measure_start` (a
    recorder that started late), the count at measure start is taken to be
    `desired_replicas`: the engine only starts measuring once the workload is ready.
    Empty when the events hold no endpoint change at all (the count is unknown).
    """
    desired = desired_replicas_over_time(events, faults, desired_replicas)
    kinds = events["kind"].astype(str)
    endpoint_events = events[kinds.isin([EventKind.ENDPOINT_ADDED.value, EventKind.ENDPOINT_REMOVED.value])]
    if not len(endpoint_events):
        # No endpoint was ever recorded: the count is unknown, not "unchanged".
        return pd.DataFrame({"ts": pd.Series(dtype=float), "ready": pd.Series(dtype=int), "desired": pd.Series(dtype=float)})
    ts = pd.to_numeric(endpoint_events["ts"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    pods = endpoint_events["name"].astype(str).map(_endpoint_pod).to_numpy()[order]
    added = (endpoint_events["kind"].astype(str) == EventKind.ENDPOINT_ADDED.value).to_numpy()[order]
    frame = pd.DataFrame({"ts": ts, "pod": pods, "added": added})
    # A pod whose first event is a removal was in the Service before the recording began.
    previous = frame.groupby("pod", sort=False)["added"].shift(1)
    previous = previous.where(previous.notna(), ~frame["added"]).astype(bool)
    delta = frame["added"].astype(int) - previous.astype(int)
    ready = np.cumsum(delta.to_numpy())
    offset = 0
    if measure_start is not None:
        prior = ts <= measure_start
        if not prior.any() and desired_replicas is not None:
            offset = int(desired_replicas)
    ready = ready + offset
    # One row per moment either count changes (endpoint events, desired-replica changes).
    times = [ts, desired["ts"].to_numpy(dtype=float)]
    if measure_start is not None:
        times.append(np.array([float(measure_start)]))
    moments = np.unique(np.concatenate(times))
    moments = moments[np.isfinite(moments)]
    idx = np.searchsorted(ts, moments, side="right") - 1
    counts = np.where(idx >= 0, ready[np.clip(idx, 0, None)], offset)
    return pd.DataFrame({"ts": moments, "ready": counts.astype(int), "desired": _step_lookup(desired, moments)})


def _step_lookup(steps: pd.DataFrame, at: np.ndarray) -> np.ndarray:
    """Value of a (ts, desired) step function at each time (NaN before its first step)."""
    if not len(steps):
        return np.full(len(at), np.nan)
    idx = np.searchsorted(steps["ts"].to_numpy(dtype=float), at, side="right") - 1
    values = steps["desired"].to_numpy(dtype=float)
    return np.where(idx >= 0, values[np.clip(idx, 0, None)], np.nan)


def capacity_recovered(endpoints: pd.DataFrame, fault_ts: float, window_end: float) -> float:
    """Seconds from the fault until ready endpoints are back to the desired replicas.

    `endpoints` is `ready_endpoints(...)`. Looks at the fault window `[fault_ts, window_end)`:
    the first moment ready < desired (a drop, or a shortfall carried over from before the
    fault), then the first later moment ready >= desired. 0 when ready never fell below
    desired in the window; NaN when it did and never came back before the window ended,
    or when ready/desired are unknown (no endpoint events: `endpoints` is empty).
    """
    if not len(endpoints):
        return math.nan
    ts = endpoints["ts"].to_numpy(dtype=float)
    ready = endpoints["ready"].to_numpy(dtype=float)
    desired = endpoints["desired"].to_numpy(dtype=float)
    before = np.flatnonzero(ts < fault_ts)
    inside = np.flatnonzero((ts >= fault_ts) & (ts < window_end))
    state_ts = np.concatenate(([fault_ts], ts[inside])) if len(before) else ts[inside]
    state_ready = np.concatenate(([ready[before[-1]]], ready[inside])) if len(before) else ready[inside]
    state_desired = np.concatenate(([desired[before[-1]]], desired[inside])) if len(before) else desired[inside]
    if not len(state_ts) or np.isnan(state_desired).all():
        return math.nan
    short = state_ready < state_desired
    if not short.any():
        return 0.0
    first_short = int(np.flatnonzero(short)[0])
    back = np.flatnonzero(~short[first_short:] & ~np.isnan(state_desired[first_short:]))
    if not len(back):
        return math.nan
    return float(state_ts[first_short + int(back[0])] - fault_ts)
