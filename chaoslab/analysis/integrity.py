"""What a run did to the data: acknowledged and lost writes, stale reads, identity kept.

Why a module of its own: these definitions read a table of their own (a trial's
integrity.csv, written by the data-integrity users, chaoslab/load/kvusers.py) and form one
concept, while the rest of the package is about requests and recovery. `chaoslab.analysis`
re-exports every public name here, so there is still one place to look a metric up
(`chaoslab.analysis.lost_writes`), and the summary table calls these functions.

Conventions as in the package (`chaoslab.analysis`): times are epoch seconds in, seconds
out; missing is NaN, never 0. A row's `ts` is when the client got its answer. A row "was
answered" when it carries the identity headers of the pod that served it (non-empty
`pod`), whatever the outcome; a failed or timed-out request has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from chaoslab.load.integrity import INTEGRITY_COLUMNS

IDENTITY_COLUMNS = ("pod", "node", "volume", "starts", "start_ts", "end_ts")


def integrity_frame(integrity: pd.DataFrame | None) -> pd.DataFrame:
    """integrity.csv as typed columns, ordered by ts (an empty frame when there is none)."""
    if integrity is None or not len(integrity):
        return pd.DataFrame({column: pd.Series(dtype="object") for column in INTEGRITY_COLUMNS})
    frame = integrity.copy()
    frame["ts"] = pd.to_numeric(frame["ts"], errors="coerce")
    for column in ("op", "key", "outcome", "pod", "node", "volume"):
        frame[column] = frame[column].fillna("").astype(str)
    frame["starts"] = pd.to_numeric(frame["starts"], errors="coerce")
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def acknowledged_keys(integrity: pd.DataFrame) -> pd.Series:
    """key -> ts of its acknowledgement (the first 200 to its write), ordered by that ts."""
    frame = integrity_frame(integrity)
    acked = frame[(frame["op"] == "write") & (frame["outcome"] == "acked")]
    return acked.groupby("key", sort=False)["ts"].min().sort_values(kind="stable")


def acknowledged_writes(integrity: pd.DataFrame) -> int:
    """Writes the service acknowledged (HTTP 200, after chaoslab/kv's fsync), counted once
    per key. A write that failed or timed out is not acknowledged, whatever became of it."""
    return int(len(acknowledged_keys(integrity)))


def lost_keys(integrity: pd.DataFrame) -> list[str]:
    """The acknowledged keys whose latest read-back after their acknowledgement answered
    404 (missing), in acknowledgement order.

    The latest read decides, not any: a key read as missing once and found later was not
    lost (the store never answers from half its data, so this does not happen with
    chaoslab/kv, but a user's image may). A key never read back after its acknowledgement
    is not counted: nothing showed that it was lost.
    """
    frame = integrity_frame(integrity)
    acked = acknowledged_keys(frame)
    reads = frame[(frame["op"] == "read") & frame["outcome"].isin(["found", "missing", "stale"])]
    if not len(acked) or not len(reads):
        return []
    reads = reads[reads["ts"].to_numpy() >= acked.reindex(reads["key"]).to_numpy()]
    latest = reads.groupby("key", sort=False)["outcome"].last()
    missing = set(latest[latest == "missing"].index)
    return [key for key in acked.index if key in missing]


def lost_writes(integrity: pd.DataFrame) -> int:
    """Acknowledged writes that were then read back as missing: `len(lost_keys(...))`.

    The definition of data loss on a slide: the service said "stored" (200), and later
    said "no such key" (404). Writes never acknowledged are not losses.
    """
    return len(lost_keys(integrity))


def stale_reads(integrity: pd.DataFrame) -> int:
    """Read-backs answered 200 with a value other than the acknowledged one."""
    frame = integrity_frame(integrity)
    return int(((frame["op"] == "read") & (frame["outcome"] == "stale")).sum())


def writes_over_time(integrity: pd.DataFrame, measure_start: float, step: float = 1.0) -> pd.DataFrame:
    """`t_s, acknowledged_writes, lost_writes`: cumulative counts by acknowledgement time.

    One row per `step` seconds after `measure_start` (t_s is the step's end), from the
    first acknowledgement to the last; a lost write counts at the moment it was
    acknowledged, so the gap between the two lines is the data that survived.
    """
    columns = ["t_s", "acknowledged_writes", "lost_writes"]
    acked = acknowledged_keys(integrity)
    if not len(acked):
        return pd.DataFrame(columns=columns)
    lost = set(lost_keys(integrity))
    times = acked.to_numpy(dtype=float) - measure_start
    is_lost = np.array([key in lost for key in acked.index])
    first = math.floor(times.min() / step) * step
    edges = np.arange(first + step, times.max() + step + 1e-9, step)
    return pd.DataFrame(
        {
            "t_s": edges,
            "acknowledged_writes": np.searchsorted(np.sort(times), edges, side="right"),
            "lost_writes": np.searchsorted(np.sort(times[is_lost]), edges, side="right"),
        },
        columns=columns,
    )


def identity_timeline(integrity: pd.DataFrame) -> pd.DataFrame:
    """Who served, in order: one row per run of answers from one identity.

    Columns: pod, node, volume, starts (the incarnation: chaoslab/kv's start count on
    that volume), start_ts and end_ts (first and last answer of the run). A new row
    begins whenever any of pod, node, volume or starts changes.
    """
    frame = integrity_frame(integrity)
    answered = frame[frame["pod"] != ""]
    if not len(answered):
        return pd.DataFrame(columns=IDENTITY_COLUMNS)
    key = answered[["pod", "node", "volume", "starts"]].astype(str).agg("|".join, axis=1)
    run = (key != key.shift()).cumsum()
    grouped = answered.groupby(run.to_numpy(), sort=True)
    out = grouped.agg(
        pod=("pod", "first"),
        node=("node", "first"),
        volume=("volume", "first"),
        starts=("starts", "first"),
        start_ts=("ts", "min"),
        end_ts=("ts", "max"),
    )
    return out.reset_index(drop=True)[list(IDENTITY_COLUMNS)]


@dataclass(frozen=True)
class IdentityOutcome:
    """What became of the serving identity across one fault (see `identity_outcome`)."""

    identity_kept: float
    time_to_same_identity_s: float


def identity_outcome(integrity: pd.DataFrame, fault_ts: float, window_end: float) -> IdentityOutcome:
    """identity_kept and time_to_same_identity_s of one fault window (fault_ts, window_end].

    The identity before the fault is that of the last answer at or before `fault_ts`.

    - identity_kept: 1.0 when the last answer in the window came from the same pod name
      and the same volume id (the same data) as before the fault, 0.0 when from another
      name or volume (an emptyDir comes back empty: same name, new volume id), NaN when
      nothing answered before the fault or in the window.
    - time_to_same_identity_s: seconds from the fault to the first answer in the window
      from the same pod name and volume id in a later incarnation (start count); when no
      other incarnation or identity answered in the window (the pod was never
      interrupted), to the first answer. NaN when it did not come back in the window.
    """
    frame = integrity_frame(integrity)
    answered = frame[frame["pod"] != ""]
    before = answered[answered["ts"] <= fault_ts]
    after = answered[(answered["ts"] > fault_ts) & (answered["ts"] <= window_end)]
    if not len(before) or not len(after):
        return IdentityOutcome(math.nan, math.nan)
    last = before.iloc[-1]
    same = (after["pod"] == last["pod"]) & (after["volume"] == last["volume"])
    kept = 1.0 if bool(same.iloc[-1]) else 0.0
    came_back = after[same & (after["starts"] > last["starts"])]
    if len(came_back):
        return IdentityOutcome(kept, float(came_back["ts"].iloc[0]) - fault_ts)
    if bool((same & (after["starts"] == last["starts"])).all()):
        return IdentityOutcome(kept, float(after["ts"].iloc[0]) - fault_ts)
    return IdentityOutcome(kept, math.nan)


def trial_integrity(integrity: pd.DataFrame | None) -> dict[str, float]:
    """The trial-level data columns of summary.csv: acknowledged_writes, lost_writes,
    stale_reads; all NaN for a trial without data-integrity users."""
    if integrity is None:
        return {"acknowledged_writes": math.nan, "lost_writes": math.nan, "stale_reads": math.nan}
    return {
        "acknowledged_writes": float(acknowledged_writes(integrity)),
        "lost_writes": float(lost_writes(integrity)),
        "stale_reads": float(stale_reads(integrity)),
    }


__all__ = [
    "IDENTITY_COLUMNS",
    "IdentityOutcome",
    "acknowledged_keys",
    "acknowledged_writes",
    "identity_outcome",
    "identity_timeline",
    "integrity_frame",
    "lost_keys",
    "lost_writes",
    "stale_reads",
    "trial_integrity",
    "writes_over_time",
]
