"""The verdict: whether a run met its SLO, recovery budget and lost-writes budget.

Separate from the metrics because it is policy, not measurement: it reads summary.csv
and the experiment's `measure` section, and the engine's exit code and `run --junit`
rest on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from chaoslab.analysis.buckets import _RATIO_EPSILON
from chaoslab.spec import MeasureSpec


@dataclass(frozen=True)
class Verdict:
    """Whether a run met its SLO and recovery budget; the engine exits 1 when not passed."""

    passed: bool
    reasons: tuple[str, ...]


def verdict(summary: pd.DataFrame, measure: MeasureSpec) -> Verdict:
    """Judge the completed trials against `measure.slo` and `measure.recovery_budget`.

    Not passed when, for any completed trial: its availability over the measurement window
    is below `slo.availability` (or nothing completed); or, with a recovery budget set, a
    fault's time to recover is above the budget or NaN (never recovered counts as missed;
    so does a fault window in which no request completed, with its own reason).
    With `measure.max_lost_writes` set, also not passed when a trial lost more
    acknowledged writes than that (`lost_writes`), or has no data-integrity record.
    Trials that did not complete are not judged; with none completed, not passed. Each
    reason names the trial (and fault) and the numbers, in table order.
    """
    if not len(summary):
        return Verdict(False, ("no trial was measured",))
    completed = summary[summary["status"] == "completed"]
    if not len(completed):
        return Verdict(False, ("no trial completed, so nothing could be judged",))
    slo = measure.slo
    reasons: list[str] = []
    for trial_id, group in completed.groupby("trial", sort=False):
        value = float(group["availability"].iloc[0])
        if math.isnan(value):
            reasons.append(f"{trial_id}: no request completed in the measurement window")
        elif value < slo.availability - _RATIO_EPSILON:
            reasons.append(f"{trial_id}: availability {_percent(value)} below the SLO {_percent(slo.availability)}")
        reasons += _lost_writes_reasons(str(trial_id), group, measure.max_lost_writes)
        if measure.recovery_budget is None:
            continue
        for fault in group[group["fault_id"].notna()].itertuples(index=False):
            recover = float(fault.time_to_recover_s)
            where = f"{trial_id} {fault.fault_id} ({fault.action} at {fault.fault_s:.1f}s)"
            if math.isnan(recover) and _no_request_completed(fault):
                # Not the same story as a dip that never ended: nothing came back at all,
                # requests hung past the window or the load stopped. Still a miss.
                reasons.append(
                    f"{where}: no request completed in its {fault.fault_window_s:.1f}s fault window "
                    "(requests hung past it, or the load stopped), so it did not recover within "
                    f"the recovery budget {measure.recovery_budget:g}s"
                )
            elif math.isnan(recover):
                reasons.append(
                    f"{where}: never recovered to {_percent(slo.availability)} over {slo.window:g}s "
                    f"(recovery budget {measure.recovery_budget:g}s)"
                )
            elif recover > measure.recovery_budget:
                reasons.append(f"{where}: recovered in {recover:.1f}s, over the recovery budget {measure.recovery_budget:g}s")
    return Verdict(not reasons, tuple(reasons))


def _lost_writes_reasons(trial_id: str, group: pd.DataFrame, budget: int | None) -> list[str]:
    if budget is None:
        return []
    lost = float(group["lost_writes"].iloc[0])
    if math.isnan(lost):
        return [f"{trial_id}: no data-integrity record (integrity.csv), so lost writes could not be judged"]
    if lost > budget:
        acked = float(group["acknowledged_writes"].iloc[0])
        return [f"{trial_id}: lost {lost:.0f} of {acked:.0f} acknowledged writes, above measure.maxLostWrites {budget}"]
    return []


def _no_request_completed(fault: Any) -> bool:
    requests = getattr(fault, "fault_window_requests", math.nan)
    return requests is not None and not pd.isna(requests) and float(requests) == 0


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"
