"""Across trials: the worst fault of each trial, medians with bootstrap CIs, comparison.csv.

A sweep point is judged on several trials, never one; how they are reduced (worst fault
per trial, never-recovered ranked worst, a seeded bootstrap) is a definition of its own,
over summary.csv rather than over a trial's tables.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from chaoslab.analysis.throughput import dip_in_the_load

# Bootstrap resamples for the 95 % confidence interval of a median: 2000 gives CI bounds
# stable to well under the spread of a handful of trials, in a few milliseconds.
BOOTSTRAP_RESAMPLES = 2000
# Two-sided 95 % interval.
CI_LEVEL = 0.95

# comparison.csv aggregates these per sweep point. For a trial with several faults, the
# fault metrics are first reduced to the trial's worst fault (see `trial_outcomes`).
COMPARISON_METRICS = (
    "availability",
    "fault_window_availability",
    "time_to_first_error_s",
    "error_window_s",
    "time_to_recover_s",
    "capacity_recovered_s",
    "failed_requests",
    "p99_ms",
    "p99_ms_during",
    "throughput_dip",
    "first_scale_up_s",
    "time_to_capacity_s",
    "peak_replicas",
    "p95_ms_spike",
    "spike_failed_requests",
    "acknowledged_writes",
    "lost_writes",
)
# For these a NaN means "never recovered": it ranks as the worst value (+inf) when trials
# are aggregated, so one trial that never recovered cannot make the median look better.
NEVER_IS_WORST = frozenset({"time_to_recover_s", "capacity_recovered_s"})
# How the worst fault of a trial is chosen, per metric.
_WORST_OF_TRIAL = {
    "fault_window_availability": "min",
    "time_to_first_error_s": "min",
    "error_window_s": "max",
    "time_to_recover_s": "max",
    "capacity_recovered_s": "max",
    "p99_ms_during": "max",
    "throughput_dip": "max",
}


@dataclass(frozen=True)
class Aggregate:
    """A metric across trials: median, min, max and a bootstrap 95 % CI of the median.

    n counts the trials that had a value. The CI is NaN for fewer than two trials.
    """

    n: int
    median: float
    min: float
    max: float
    ci_low: float
    ci_high: float


def aggregate(values: Iterable[float], rng: np.random.Generator, *, never_is_worst: bool = False) -> Aggregate:
    """Median, min, max and a percentile-bootstrap 95 % CI of the median.

    The CI resamples the trials with replacement `BOOTSTRAP_RESAMPLES` times with `rng`
    (pass a seeded `numpy.random.Generator`: same seed, same interval) and takes the 2.5th
    and 97.5th percentiles of the resampled medians (no interpolation, so a bound is always
    a value the median could take). With `never_is_worst`, NaN means "never happened" and
    ranks above every number (a trial that never recovered is the slowest); a statistic
    that lands on such a trial is reported as NaN. Otherwise NaNs are left out.
    """
    array = np.asarray(list(values), dtype=float)
    if never_is_worst:
        array = np.where(np.isnan(array), np.inf, array)
    else:
        array = array[~np.isnan(array)]
    n = len(array)
    if n == 0:
        return Aggregate(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    median = float(np.median(array))
    ci_low = ci_high = math.nan
    if n >= 2:
        samples = array[rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))]
        medians = np.median(samples, axis=1)
        tail = (1.0 - CI_LEVEL) / 2.0
        ci_low = float(np.quantile(medians, tail, method="inverted_cdf"))
        ci_high = float(np.quantile(medians, 1.0 - tail, method="inverted_cdf"))

    def finite(value: float) -> float:
        return value if math.isfinite(value) else math.nan

    return Aggregate(n, finite(median), finite(float(array.min())), finite(float(array.max())), finite(ci_low), finite(ci_high))


def trial_outcomes(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: trial-level metrics, and each fault metric of the trial's worst fault.

    Worst means: lowest fault_window_availability and time_to_first_error_s, highest
    error_window_s, p99_ms_during, throughput_dip, time_to_recover_s and
    capacity_recovered_s, where never recovering (NaN on a fault row) is the worst.
    Fault metrics are NaN for a trial without faults.
    """
    if not len(summary):
        return summary.iloc[0:0].copy()
    has_fault = summary["fault_id"].notna()
    grouped = summary.groupby("trial", sort=False)
    out = grouped.first()
    for metric, how in _WORST_OF_TRIAL.items():
        values = summary[metric].astype(float)
        if metric in NEVER_IS_WORST:
            values = values.where(~(has_fault & values.isna()), math.inf)
        values = values.where(has_fault)
        # Kept as +inf for never-recovered: comparison_table counts and ranks those.
        out[metric] = values.groupby(summary["trial"], sort=False).agg(how)
    out["faults"] = has_fault.groupby(summary["trial"], sort=False).sum()
    return out.reset_index()


def throughput_dip_notes(summary: pd.DataFrame) -> list[str]:
    """What a reader must know beside the throughput dip, one sentence per sweep point
    (in order of appearance) whose worst dip, in at least one trial, was in the load
    itself (`dip_in_the_load`). The numbers are those of the trial with the deepest such
    dip: before and lowest successful requests/s, the requests the clients sent and
    failed then, and the slowest request in flight. Empty when no dip qualifies.
    """
    needed = {"label", "trial", "throughput_dip", "throughput_failed_at_min", "throughput_slowest_at_min_ms"}
    if not len(summary) or not needed <= set(summary.columns):
        return []
    rows = summary[summary["fault_id"].notna() & summary["throughput_dip"].notna()]
    if not len(rows):
        return []
    # Each trial's worst dip, as `trial_outcomes` reduces it.
    worst = rows.loc[rows.groupby("trial", sort=False)["throughput_dip"].idxmax()]
    notes = []
    for label, group in worst.groupby("label", sort=False):
        trials = len(group)
        paced = group[
            [
                dip_in_the_load(float(r.throughput_dip), float(r.throughput_failed_at_min), float(r.throughput_slowest_at_min_ms))
                for r in group.itertuples()
            ]
        ]
        if not len(paced):
            continue
        row = paced.loc[paced["throughput_dip"].idxmax()]
        slowest = float(row["throughput_slowest_at_min_ms"])
        in_flight = "no request was in flight then" if math.isnan(slowest) else f"the slowest request in flight then took {slowest:.0f} ms"
        notes.append(
            f"{label}: the throughput dip is the load pausing, not the service ({len(paced)} of {trials} "
            f"trial{'s' if trials != 1 else ''}). In trial {row['trial']}, after {row['fault_id']} ({row['action']}), "
            f"successful requests fell from {float(row['throughput_before_rps']):.0f}/s to "
            f"{float(row['throughput_min_rps']):.0f}/s ({float(row['throughput_dip']):.0%}) in the lowest second, "
            f"but the clients sent only {float(row['throughput_sent_at_min_rps']):.0f} requests/s in it, none failed "
            f"in it or the second before, and {in_flight}: the service answered every request it got, "
            "the users were not sending. Locust users are closed-loop: each sends its next request only "
            "after the previous answer, its sleeps and its wait_time, so users that started together and "
            "finish a long task together pause together. Run the same load without the fault to see its own rhythm."
        )
    return notes


def comparison_table(summary: pd.DataFrame, sweep_paths: Sequence[str], rng: np.random.Generator) -> pd.DataFrame:
    """comparison.csv: one row per sweep point, aggregated across its trials (`aggregate`).

    Columns: point, label, one per sweep parameter, trials (trials with a summary row),
    never_recovered (trials with a fault that never recovered to the SLO), then for each of
    `COMPARISON_METRICS`: <metric>_median, _min, _max, _ci_low, _ci_high. Fault metrics are
    first reduced per trial to its worst fault (`trial_outcomes`); a never-recovered trial
    counts as the slowest for time_to_recover_s and capacity_recovered_s.
    """
    stats = ("median", "min", "max", "ci_low", "ci_high")
    columns = ["point", "label", *sweep_paths, "trials", "never_recovered"]
    columns += [f"{metric}_{stat}" for metric in COMPARISON_METRICS for stat in stats]
    outcomes = trial_outcomes(summary)
    if not len(outcomes):
        return pd.DataFrame(columns=columns)
    rows = []
    for point, group in outcomes.groupby("point", sort=True):
        row: dict[str, Any] = {"point": point, "label": group["label"].iloc[0]}
        row.update({path: group[path].iloc[0] if path in group.columns else None for path in sweep_paths})
        row["trials"] = len(group)
        row["never_recovered"] = int(np.isinf(group["time_to_recover_s"].astype(float)).sum())
        for metric in COMPARISON_METRICS:
            values = group[metric].astype(float).to_numpy()
            if metric in NEVER_IS_WORST:
                faulted = group["faults"].to_numpy() > 0
                values = np.where(np.isinf(values), np.nan, values)[faulted]
            result = aggregate(values, rng, never_is_worst=metric in NEVER_IS_WORST)
            for stat in stats:
                row[f"{metric}_{stat}"] = getattr(result, stat)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def representative_trials(summary: pd.DataFrame) -> dict[str, str]:
    """The trial that stands for each sweep point on a time-series chart: label -> trial id.

    The trial with the median availability (for an even count, the lower of the two middle
    ones, so the chart never looks better than the typical trial). Trials without a
    measured availability are chosen only when no other exists.
    """
    if not len(summary):
        return {}
    trials = summary.groupby("trial", sort=False).first().reset_index()
    chosen = {}
    for label, group in trials.groupby("label", sort=False):
        ranked = group.assign(_a=group["availability"].astype(float)).sort_values(["_a", "trial_index"], na_position="last")
        measured = ranked[ranked["_a"].notna()]
        pool = measured if len(measured) else ranked
        chosen[str(label)] = str(pool["trial"].iloc[(len(pool) - 1) // 2])
    return chosen
