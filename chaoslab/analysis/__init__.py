"""What a run means in numbers: availability, error windows, recovery, latency, and trials aggregated.

Every definition a report states lives in this package, once, as a pure function over the
pandas frames of the results contract (docs/results.md): no I/O, no cluster, no plotting.
A chart or a table that says "time to recover" calls the function whose docstring defines
it, so a number on a slide can always be traced to one paragraph of code.

`chaoslab.analysis` is the one place a metric is looked up: every public name of the
modules below is re-exported here (`analysis.time_to_recover`, `analysis.lost_writes`).
The package is split by concept, each module with the table it reads:

- `buckets`: load.csv as arrays and the window rule every load metric shares.
- `service`: availability, failures by class, time to first error, error window, time to recover.
- `latency`: latency percentiles over a period, from per-bucket percentiles.
- `throughput`: the throughput dip of a fault, and whether it was the load itself.
- `series`: the measurement window as a time series for charts.
- `capacity`: desired replicas, ready endpoints and capacity recovery, from events.csv.
- `pods`: recovery phases and pod states, from events.csv.
- `autoscale`: the load spike, first scale-up, time to capacity, the HPA's expected answer.
- `integrity`: acknowledged and lost writes, stale reads, identity kept (integrity.csv).
- `summary`: summary.csv, one row per trial x fault, assembled from the above.
- `trials`: the worst fault per trial, aggregates across trials, comparison.csv.
- `slo`: the verdict against the SLO, the recovery budget and the lost-writes budget.

Conventions shared by every function:

- Times are wall-clock epoch seconds (`ts`) in, seconds (`*_s`) or milliseconds (`*_ms`) out.
- A load bucket covers `[ts, ts + bucket)`. A bucket belongs to a time window `(a, b]` by its
  END: `a < ts + bucket <= b`. Windows that share a boundary therefore partition the buckets
  (none is counted twice), and the bucket in which a fault fires belongs to that fault's
  window (its requests may have been hurt by the fault).
- Resolution is one bucket: a time measured from buckets is exact to `measure.bucket`.
- Missing is NaN, never 0. Where 0 is a real answer ("never dipped") the docstring says so.
- A *fault window* runs from a fault's injection to the next injection (of any fault) or to
  the end of the measurement, so a trial's fault windows partition its measurement window.
"""

from __future__ import annotations

from chaoslab.analysis.autoscale import (
    AUTOSCALE_COLUMNS,
    LoadStep,
    autoscaler_over_time,
    expected_replicas,
    first_scale_up,
    load_spike,
    load_steps,
    predicted_first_scale_up,
    scale_events,
    time_to_capacity,
    users_over_time,
)
from chaoslab.analysis.buckets import Buckets
from chaoslab.analysis.capacity import capacity_recovered, desired_replicas_over_time, ready_endpoints
from chaoslab.analysis.integrity import (
    IDENTITY_COLUMNS,
    IdentityOutcome,
    acknowledged_keys,
    acknowledged_writes,
    identity_outcome,
    identity_timeline,
    integrity_frame,
    lost_keys,
    lost_writes,
    stale_reads,
    trial_integrity,
    writes_over_time,
)
from chaoslab.analysis.latency import Latency, latency_percentiles
from chaoslab.analysis.pods import PHASE_COLUMNS, POD_STATES, PodEvents, pod_states, recovery_phases
from chaoslab.analysis.series import time_series
from chaoslab.analysis.service import (
    availability,
    error_window,
    failures_by_class,
    time_to_first_error,
    time_to_recover,
)
from chaoslab.analysis.slo import Verdict, verdict
from chaoslab.analysis.summary import (
    SUMMARY_COLUMNS,
    SUMMARY_LEAD_COLUMNS,
    fault_windows,
    measurement_window,
    point_label,
    summary_table,
    trial_summary,
)
from chaoslab.analysis.throughput import (
    LOAD_PACED_MAX_IN_FLIGHT_MS,
    LOAD_PACED_MIN_DIP,
    THROUGHPUT_SMOOTHING_S,
    ThroughputDip,
    dip_in_the_load,
    throughput_dip,
)
from chaoslab.analysis.trials import (
    BOOTSTRAP_RESAMPLES,
    CI_LEVEL,
    COMPARISON_METRICS,
    NEVER_IS_WORST,
    Aggregate,
    aggregate,
    comparison_table,
    representative_trials,
    throughput_dip_notes,
    trial_outcomes,
)

__all__ = [
    "AUTOSCALE_COLUMNS",
    "BOOTSTRAP_RESAMPLES",
    "CI_LEVEL",
    "COMPARISON_METRICS",
    "IDENTITY_COLUMNS",
    "LOAD_PACED_MAX_IN_FLIGHT_MS",
    "LOAD_PACED_MIN_DIP",
    "NEVER_IS_WORST",
    "PHASE_COLUMNS",
    "POD_STATES",
    "SUMMARY_COLUMNS",
    "SUMMARY_LEAD_COLUMNS",
    "THROUGHPUT_SMOOTHING_S",
    "Aggregate",
    "Buckets",
    "IdentityOutcome",
    "Latency",
    "LoadStep",
    "PodEvents",
    "ThroughputDip",
    "Verdict",
    "acknowledged_keys",
    "acknowledged_writes",
    "aggregate",
    "autoscaler_over_time",
    "availability",
    "capacity_recovered",
    "comparison_table",
    "desired_replicas_over_time",
    "dip_in_the_load",
    "error_window",
    "expected_replicas",
    "failures_by_class",
    "fault_windows",
    "first_scale_up",
    "identity_outcome",
    "identity_timeline",
    "integrity_frame",
    "latency_percentiles",
    "load_spike",
    "load_steps",
    "lost_keys",
    "lost_writes",
    "measurement_window",
    "point_label",
    "pod_states",
    "predicted_first_scale_up",
    "ready_endpoints",
    "recovery_phases",
    "representative_trials",
    "scale_events",
    "stale_reads",
    "summary_table",
    "throughput_dip",
    "throughput_dip_notes",
    "time_series",
    "time_to_capacity",
    "time_to_first_error",
    "time_to_recover",
    "trial_integrity",
    "trial_outcomes",
    "trial_summary",
    "users_over_time",
    "verdict",
    "writes_over_time",
]
