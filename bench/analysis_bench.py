"""How fast the numbers and the report come out of a results folder.

Targets (issue 5): analysis of a 1-hour trial at 100 ms buckets (36,000 rows) well under
1 s; the full report with PNG and SVG of a 4-point x 3-trial sweep under 30 s. The run
folders are synthetic (tests/fixtures/runs/make_fixture.py) and written to a temporary
folder; reading them back is timed apart from the analysis.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from chaoslab import analysis, charts
from chaoslab.report import build_report, find_browser
from chaoslab.results import read_run
from tests.fixtures.runs.make_fixture import write_run

# Repeats for the analysis timing: enough for a stable median on a noisy 2-core machine.
REPEATS = 7


def _median_seconds(work: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def bench_hour_trial(root: Path) -> None:
    for faults_at, what in (((15.0,),  "1 pod delete"), (tuple(15.0 + 60.0 * i for i in range(60)), "60 pod deletes, one a minute")):
        started = time.perf_counter()
        run_dir = write_run(root, folder=f"hour-{len(faults_at)}", replicas=(3,), trials=1, duration=3600.0, faults_at=faults_at)
        written = time.perf_counter() - started
        read_s, run = _median_seconds(lambda: read_run(run_dir), repeats=3)
        rows = len(run.trials[0].load)
        summary_s, summary = _median_seconds(lambda: analysis.summary_table(run))
        compare_s, _ = _median_seconds(lambda: analysis.comparison_table(summary, run.sweep_paths, np.random.default_rng(0)))
        charts_s, _ = _median_seconds(lambda: (charts.availability_chart(run, summary), charts.latency_chart(run, summary)), repeats=3)
        print(f"1-hour trial, {rows} buckets, {what} (folder written in {written:.1f}s):")
        print(f"  read_run                 median {read_s * 1000:7.1f} ms")
        print(f"  summary_table            median {summary_s * 1000:7.1f} ms   (target < 1000 ms)")
        print(f"  comparison_table         median {compare_s * 1000:7.1f} ms")
        print(f"  charts (1) + (2) figures median {charts_s * 1000:7.1f} ms")


def bench_sweep_report(root: Path) -> None:
    run_dir = write_run(root, folder="sweep-4x3", replicas=(1, 2, 3, 4), trials=3)
    html_only_s, _ = _median_seconds(lambda: build_report(run_dir, images=False), repeats=3)
    print("report of a 4-point x 3-trial sweep (30 s trials):")
    print(f"  HTML only                median {html_only_s:7.2f} s")
    if find_browser() is None:
        print("  PNG + SVG                skipped: no Chromium (apt-get install -y chromium fonts-dejavu-core fonts-liberation)")
        return
    times = []
    for _ in range(2):
        started = time.perf_counter()
        result = build_report(run_dir, images=True)
        times.append(time.perf_counter() - started)
    print(f"  HTML + {len(result.charts)} images (PNG+SVG) runs {', '.join(f'{t:.2f}s' for t in times)}; median {statistics.median(times):.2f} s (target < 30 s)")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="chaoslab-bench-") as tmp:
        root = Path(tmp)
        bench_hour_trial(root)
        bench_sweep_report(root)


if __name__ == "__main__":
    main()
