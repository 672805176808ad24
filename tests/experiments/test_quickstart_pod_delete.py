"""quickstart-pod-delete: the throughput dip after a graceful pod-delete is the load pausing.

Locust's quickstart users started together pause together ~10 s after starting (issue
11): the report must say the dip is the clients not sending, from the results alone.
"""

from __future__ import annotations

import math
import re

import pytest

from chaoslab import analysis
from tests.experiments.lessons import LIBRARY, completed, summary_rows

pytestmark = pytest.mark.slow

# One trial; the users start ~1 s into the 3 s warmup, the fault comes 6 s later (a
# steady baseline before it) and their common pause ~10 s after they started, 3-5 s
# after the deletion and its own brief effects.
SHORT = ("--set", "trials=1", "--set", "faults.0.at=4s", "--set", "timeline.warmup=3s", "--set", "timeline.duration=12s")


def test_the_dip_is_the_clients_pausing_and_the_report_says_so(run_cli) -> None:
    result = run_cli(LIBRARY / "quickstart-pod-delete.yaml", *SHORT)
    assert result.code in (0, 1), result.stderr  # 1: resets at the deletion can miss the SLO
    run = result.results()
    completed(run)
    (row,) = summary_rows(run).to_dict("records")
    (trial,) = run.trials
    load = trial.load.sort_values("ts")
    # The only failures (if any) are requests racing the deleted pod's shutdown on a
    # kept-alive connection, at the deletion itself.
    failed_at = load.loc[load["failures"] > 0, "ts"] - row["fault_ts"]
    assert ((failed_at > -0.2) & (failed_at < 1.0)).all(), failed_at.tolist()
    # Deep: the ~22 users whose first task is the 10-item one wait at once.
    assert row["throughput_dip"] >= 0.3, row
    # All the clients sent in the lowest second was served, none held by the service.
    assert row["throughput_sent_at_min_rps"] == row["throughput_min_rps"]
    assert row["throughput_failed_at_min"] == 0
    assert math.isnan(row["throughput_slowest_at_min_ms"]) or row["throughput_slowest_at_min_ms"] <= 100
    # The lowest second is the users' common pause, long after the deletion: ~10 s after
    # they started (at the warmup, 3 s before the fault), not in the seconds after it.
    rolling = (load["requests"] - load["failures"]).rolling(10).sum()
    in_window = load["ts"] + 0.1 > row["fault_ts"]
    lowest_end = float(load["ts"][rolling[in_window].idxmin()]) + 0.1
    assert lowest_end - row["fault_ts"] >= 2.5, (lowest_end - row["fault_ts"], row)
    (note,) = analysis.throughput_dip_notes(summary_rows(run))
    html = (run.path / "report.html").read_text(encoding="utf-8")
    assert "the throughput dip is the load pausing, not the service (1 of 1 trial)" in html
    assert re.search(r"sent only \d+ requests/s in it, none failed", html)
    assert note.split(": ", 1)[1][:40] in html
    # The terminal says it too, under the key numbers.
    assert "throughput dip: all trials: the throughput dip is the load pausing" in " ".join(result.stdout.split())
