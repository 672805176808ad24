"""How the pods came back after a fault: recovery phases and each pod's state over time.

Read from the pod and endpoint events of events.csv: the phases (create, schedule, start,
ready, endpoint) say where a recovery spent its time, the states draw the recovery
timeline. One concept, the pods' lifecycle, beside capacity (`capacity.py`), which only
counts endpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from chaoslab.analysis.capacity import _endpoint_pod
from chaoslab.cluster.base import EventKind

# The recovery phases of a pod fault, in order, as columns of the summary table.
PHASE_COLUMNS = (
    "phase_create_s",
    "phase_schedule_s",
    "phase_start_s",
    "phase_ready_s",
    "phase_endpoint_s",
    "phase_total_s",
)

_POD_EVENT_KINDS = frozenset(
    {
        EventKind.POD_CREATED.value,
        EventKind.POD_PENDING.value,
        EventKind.POD_SCHEDULED.value,
        EventKind.CONTAINER_STARTED.value,
        EventKind.CONTAINER_DIED.value,
        EventKind.CONTAINER_RESTARTED.value,
        EventKind.BACK_OFF.value,
        EventKind.POD_READY.value,
        EventKind.POD_NOT_READY.value,
        EventKind.POD_TERMINATING.value,
        EventKind.POD_DELETED.value,
        EventKind.POD_EVICTED.value,
        EventKind.ENDPOINT_ADDED.value,
        EventKind.ENDPOINT_REMOVED.value,
    }
)


def recovery_phases(
    events: pd.DataFrame,
    *,
    fault_ts: float,
    window_end: float,
    action: str,
    targets: Sequence[str] = (),
) -> pd.DataFrame:
    """How the pods that replaced a fault's victims came back, one row per pod, seconds.

    For pod-delete, node faults and scale: the pods created in the fault window
    `[fault_ts, window_end)` are the replacements, matched in creation order to the
    fault's targets where those are pods. For container-kill: the target pods themselves,
    restarted in place (no create/schedule phase).

    Columns: pod, replaces, then the phases, each the time between two events:
    phase_create_s (fault -> pod_created), phase_schedule_s (created -> pod_scheduled),
    phase_start_s (scheduled, or the fault for a restart -> container_started),
    phase_ready_s (started -> pod_ready), phase_endpoint_s (ready -> endpoint_added),
    phase_total_s (fault -> endpoint_added, or -> pod_ready if no endpoint event came).
    A phase whose events did not happen in the window is NaN.
    """
    return _recovery_phases(PodEvents.from_frame(events), fault_ts, window_end, action, targets)


@dataclass(frozen=True)
class PodEvents:
    """The pod and endpoint events of a trial, sorted by time, endpoint names mapped to pods."""

    ts: np.ndarray
    kind: np.ndarray
    pod: np.ndarray

    @staticmethod
    def from_frame(events: pd.DataFrame) -> PodEvents:
        if not len(events):
            return PodEvents(np.zeros(0), np.zeros(0, dtype=object), np.zeros(0, dtype=object))
        kinds = events["kind"].astype(str)
        scoped = events[kinds.isin(_POD_EVENT_KINDS)]
        ts = pd.to_numeric(scoped["ts"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        kind = scoped["kind"].astype(str).to_numpy(dtype=object)
        pod = scoped["name"].astype(str).map(_endpoint_pod).to_numpy(dtype=object)
        keep = ~np.isnan(ts)
        order = np.argsort(ts[keep], kind="stable")
        return PodEvents(ts[keep][order], kind[keep][order], pod[keep][order])


def _recovery_phases(events: PodEvents, fault_ts: float, window_end: float, action: str, targets: Sequence[str]) -> pd.DataFrame:
    lo = int(np.searchsorted(events.ts, fault_ts, side="left"))
    hi = int(np.searchsorted(events.ts, window_end, side="left"))
    first: dict[tuple[str, str], float] = {}
    created_order: list[str] = []
    for ts, kind, pod in zip(events.ts[lo:hi], events.kind[lo:hi], events.pod[lo:hi]):
        if (pod, kind) not in first:
            first[(pod, kind)] = float(ts)
            if kind == EventKind.POD_CREATED.value:
                created_order.append(pod)

    def at(pods: Sequence[str], kind: str) -> np.ndarray:
        return np.array([first.get((pod, kind), np.nan) for pod in pods], dtype=float)

    if action == "container-kill":
        pods = [t for t in targets if t]
        replaces = list(pods)
        created = np.full(len(pods), np.nan)
        scheduled = np.full(len(pods), np.nan)
        start_from = np.full(len(pods), float(fault_ts))
    else:
        pods = created_order
        victims = [t for t in targets if t] if action == "pod-delete" else []
        replaces = [victims[i] if i < len(victims) else "" for i in range(len(pods))]
        created = at(pods, EventKind.POD_CREATED.value)
        scheduled = at(pods, EventKind.POD_SCHEDULED.value)
        start_from = scheduled
    started = at(pods, EventKind.CONTAINER_STARTED.value)
    ready = at(pods, EventKind.POD_READY.value)
    endpoint = at(pods, EventKind.ENDPOINT_ADDED.value)
    back = np.where(np.isnan(endpoint), ready, endpoint)
    return pd.DataFrame(
        {
            "pod": pods,
            "replaces": replaces,
            "phase_create_s": created - fault_ts,
            "phase_schedule_s": scheduled - created,
            "phase_start_s": started - start_from,
            "phase_ready_s": ready - started,
            "phase_endpoint_s": endpoint - ready,
            "phase_total_s": back - fault_ts,
        },
        columns=["pod", "replaces", *PHASE_COLUMNS],
    )


# Pod states for the recovery timeline, in the order a replacement goes through them.
POD_STATES = (
    "scheduling",
    "starting",
    "warming up",
    "joining Service",
    "serving",
    "not ready",
    "restarting",
    "terminating",
)
_STATE_AFTER = {
    EventKind.POD_CREATED.value: "scheduling",
    EventKind.POD_PENDING.value: "scheduling",
    EventKind.POD_SCHEDULED.value: "starting",
    EventKind.CONTAINER_RESTARTED.value: "starting",
    EventKind.CONTAINER_STARTED.value: "warming up",
    EventKind.CONTAINER_DIED.value: "restarting",
    EventKind.BACK_OFF.value: "restarting",
    EventKind.POD_READY.value: "joining Service",
    EventKind.ENDPOINT_ADDED.value: "serving",
    EventKind.POD_NOT_READY.value: "not ready",
    EventKind.ENDPOINT_REMOVED.value: "not ready",
    EventKind.POD_TERMINATING.value: "terminating",
    EventKind.POD_EVICTED.value: "terminating",
}


def pod_states(events: pd.DataFrame, start: float, end: float) -> pd.DataFrame:
    """Each pod's state over `[start, end)`, from its events: columns pod, state, start_ts, end_ts.

    States (`POD_STATES`): scheduling (created, not bound), starting (bound, container not
    running), warming up (running, not ready), joining Service (ready, not yet in the
    endpoints), serving (in the endpoints), not ready, restarting (container died or in
    back-off), terminating (deletion or eviction started; sticky until pod_deleted). Events
    of a deleted pod (an endpoint removal that propagates late) change nothing. The state
    at `start` comes from the pod's earlier events; a pod deleted before `start` is left out.
    """
    columns = ["pod", "state", "start_ts", "end_ts"]
    if not len(events):
        return pd.DataFrame(columns=columns)
    kinds = events["kind"].astype(str)
    scoped = events[kinds.isin(_POD_EVENT_KINDS)]
    ts = pd.to_numeric(scoped["ts"], errors="coerce").to_numpy(dtype=float)
    frame = pd.DataFrame({"ts": ts, "kind": scoped["kind"].astype(str).to_numpy(), "pod": scoped["name"].astype(str).map(_endpoint_pod).to_numpy()})
    frame = frame[(frame["ts"] < end) & ~np.isnan(frame["ts"])].sort_values("ts", kind="stable")
    rows: list[tuple[str, str, float, float]] = []
    for pod, group in frame.groupby("pod", sort=False):
        state: str | None = None
        deleted = False
        since = start
        for event_ts, kind in zip(group["ts"].to_numpy(), group["kind"].to_numpy()):
            if kind == EventKind.POD_DELETED.value:
                new_state = None
                deleted = True
            elif deleted and kind != EventKind.POD_CREATED.value:
                continue  # e.g. its endpoint removal, propagated after the pod was gone
            elif state == "terminating":
                new_state = "terminating"
            elif kind == EventKind.ENDPOINT_REMOVED.value and state not in (None, "serving"):
                # The removal trails the pod's own change (not ready, container died, back-off,
                # even the restart) by the propagation delay; it must not relabel that state.
                new_state = state
            else:
                new_state = _STATE_AFTER.get(kind, state)
            if kind == EventKind.POD_CREATED.value:
                deleted = False
            if new_state == state:
                continue
            if state is not None and event_ts > start:
                rows.append((str(pod), state, max(since, start), float(event_ts)))
            state, since = new_state, float(event_ts)
        if state is not None:
            rows.append((str(pod), state, max(since, start), float(end)))
    out = pd.DataFrame(rows, columns=columns)
    return out[out["end_ts"] > out["start_ts"]].reset_index(drop=True)
