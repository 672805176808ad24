"""Benchmarks of the engine: per-trial overhead on sim, and memory over a long run.

Why it exists: an experiment's numbers are only about the cluster if the engine adds
little of its own. Issue 4's targets: engine overhead per trial on sim (deploy, ready,
teardown, beyond the configured delays) at most 3 s; engine process memory flat over a
10-minute run. Both are measured through the real CLI (`chaoslab run`) and printed as
medians; nothing is asserted (shared, noisy machines).

The load path's throughput against plain Locust is measured in load_bench.py.

Environment knobs: BENCH_ENGINE_TRIALS (overhead samples, default 3),
BENCH_ENGINE_MINUTES (length of the memory run, default 10; 0 skips it).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

TRIALS = int(os.environ.get("BENCH_ENGINE_TRIALS", "3"))
MEMORY_MINUTES = float(os.environ.get("BENCH_ENGINE_MINUTES", "10"))
# RSS samples of the engine process during the memory run.
MEMORY_SAMPLE_SECONDS = 10.0

# A trial with nothing but the fixed parts: 2 replicas, no readiness probe, no app delays,
# 1 s of load. Configured delays: the sim's podStartDelay (0.5 s, its default), so
# overhead = wall time - warmup - duration - cooldown - 0.5 s.
OVERHEAD_EXPERIMENT = textwrap.dedent(
    """
    name: bench-overhead
    workload: {name: web, replicas: 2}
    load: {users: 5, spawnRate: 50}
    timeline: {warmup: 0s, duration: 1s, cooldown: 0s}
    trials: %d
    """
)
POD_START_DELAY = 0.5

MEMORY_EXPERIMENT = textwrap.dedent(
    """
    name: bench-memory
    workload:
      name: web
      replicas: 3
      readinessProbe: {httpGet: {path: /readyz}, periodSeconds: 1}
      app: {latencyMs: 2}
    load: {users: 20, spawnRate: 20}
    timeline: {warmup: 2s, duration: %ds, cooldown: 1s}
    faults:
      - {at: 10s, every: 20s, action: pod-delete, target: {count: 1}, gracePeriodSeconds: 0}
    """
)


def _run(experiment: str, workdir: Path) -> tuple[Path, float]:
    path = workdir / "experiment.yaml"
    path.write_text(experiment)
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "chaoslab", "run", str(path), "--out", str(workdir / "results"), "--no-images"],
        check=False,
        capture_output=True,
    )
    run_dir = next((workdir / "results").iterdir())
    return run_dir, time.monotonic() - started


def bench_overhead() -> None:
    with tempfile.TemporaryDirectory(prefix="chaoslab-bench-") as tmp:
        run_dir, _ = _run(OVERHEAD_EXPERIMENT % TRIALS, Path(tmp))
        overheads, parts = [], {"deploy+ready": [], "load start": [], "teardown": []}
        for info_path in sorted(run_dir.glob("trials/*/trial.json")):
            phases = json.loads(info_path.read_text())["phases"]
            configured = 1.0 + POD_START_DELAY  # duration + the sim's pod start delay
            overheads.append(phases["end"] - phases["deploy"] - configured)
            parts["deploy+ready"].append(phases["warmup"] - phases["deploy"] - POD_START_DELAY)
            parts["load start"].append(phases["measure"] - phases["warmup"])
            parts["teardown"].append(phases["end"] - phases["teardown"])
    print(f"engine overhead per trial (median of {len(overheads)}): {statistics.median(overheads):.2f} s  (target <= 3 s)")
    for name, values in parts.items():
        print(f"  {name:13s} median {statistics.median(values):.2f} s")


def bench_memory() -> None:
    if MEMORY_MINUTES <= 0:
        print("memory run skipped (BENCH_ENGINE_MINUTES=0)")
        return
    seconds = int(MEMORY_MINUTES * 60)
    with tempfile.TemporaryDirectory(prefix="chaoslab-bench-") as tmp:
        workdir = Path(tmp)
        path = workdir / "experiment.yaml"
        path.write_text(MEMORY_EXPERIMENT % seconds)
        process = subprocess.Popen(
            [sys.executable, "-m", "chaoslab", "run", str(path), "--out", str(workdir / "results"), "--no-images"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        engine = psutil.Process(process.pid)
        samples: list[tuple[float, float]] = []
        started = time.monotonic()
        while process.poll() is None:
            try:
                samples.append((time.monotonic() - started, engine.memory_info().rss / 2**20))
            except psutil.NoSuchProcess:
                break
            time.sleep(MEMORY_SAMPLE_SECONDS)
    # Compare the first sample after a minute of load (imports and warm-up are done)
    # with the last sample of the measurement.
    steady = [rss for t, rss in samples if t >= 60.0] or [rss for _, rss in samples]
    print(
        f"engine RSS over a {MEMORY_MINUTES:g}-minute run: {steady[0]:.1f} MiB after 1 min, "
        f"{steady[-1]:.1f} MiB at the end, growth {steady[-1] - steady[0]:+.1f} MiB, "
        f"max {max(steady):.1f} MiB ({len(samples)} samples)"
    )


def main() -> None:
    bench_overhead()
    bench_memory()
