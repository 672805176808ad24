"""Benchmarks of the simulated cluster: pod readiness overhead, memory, Service proxy cost.

Why it exists: the simulator's numbers only teach the right lessons if it adds little
of its own: a pod must be Ready about when its configured delays say, 50 pods must fit
on a laptop, and the Service proxy must not be the bottleneck of a load test. Each
figure is measured side by side in one run and printed; nothing is asserted (shared,
noisy machines). Targets (issue 3): ready overhead <= 0.3 s; 50 pods < 1 GB RSS;
through the proxy >= 60 % of direct Locust throughput, <= 1 ms added median latency.

Locust runs as its own process (`python -m locust`, headless) with a tiny FastHttpUser
file that records every response time as a float, so medians have sub-millisecond
resolution (Locust's own stats round to whole milliseconds).
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

from chaoslab.cluster.base import ClusterEvent, Deployment
from chaoslab.cluster.sim import SimCluster
from chaoslab.spec import HttpGetAction, ProbeSpec, SimClusterSpec, WorkloadSpec

# Pods measured for the readiness overhead (one deploy, N samples).
READY_SAMPLES = int(os.environ.get("BENCH_SIM_READY_PODS", "10"))
# The memory scenario of issue 3.
MEMORY_PODS = 50
MEMORY_NODES = 5
# Locust settings: 20 users spawned at once for 10 s, per run.
LOCUST_USERS = 20
LOCUST_SECONDS = int(os.environ.get("BENCH_SIM_LOCUST_SECONDS", "10"))
# Paced run for latency: a user waits this long between requests (like the demo's
# 50-100 ms), so latency is measured below saturation.
PACED_WAIT_SECONDS = 0.05
# Direct/proxy pairs per load shape, in alternating order; the medians over rounds
# steady the ratio on a shared machine where other jobs come and go.
ROUNDS = int(os.environ.get("BENCH_SIM_ROUNDS", "2"))
# How long the idle control plane is watched for its CPU cost with 50 pods.
IDLE_SECONDS = 3.0

LOCUSTFILE = textwrap.dedent(
    """
    import json
    import os

    from locust import FastHttpUser, constant, events, task

    OUT = os.environ["BENCH_OUT"]
    WAIT = float(os.environ.get("BENCH_WAIT", "0"))
    samples = []
    failures = []


    @events.request.add_listener
    def record(response_time, exception, **kwargs):
        (failures if exception is not None else samples).append(response_time)


    @events.quitting.add_listener
    def dump(environment, **kwargs):
        total = environment.stats.total
        with open(OUT, "w") as handle:
            json.dump({"rps": total.total_rps, "samples": samples, "failures": len(failures)}, handle)


    class Web(FastHttpUser):
        wait_time = constant(WAIT)

        @task
        def root(self):
            self.client.get("/")
    """
)


def _events_by(events: list[ClusterEvent], kind: str) -> dict[str, float]:
    return {e.name: e.ts for e in events if e.kind.value == kind}


def bench_ready_latency() -> None:
    """Ready latency beyond the configured delays, with and without a readiness probe."""
    print(f"[ready] {READY_SAMPLES} pods on 5 nodes, default timings")
    for label, probe, startup in (
        ("no readiness probe", None, 0.0),
        # Start-up 0.5 s < period 1 s: the immediate first probe fails, the second passes,
        # so the configured delay includes exactly one probe period.
        ("readiness probe, period 1s", ProbeSpec(http_get=HttpGetAction(path="/readyz"), period_seconds=1), 0.5),
    ):
        spec = SimClusterSpec(nodes=5)
        with SimCluster(spec, seed=1) as cluster:
            workload = WorkloadSpec(
                name="web", replicas=READY_SAMPLES, readiness_probe=probe, app={"startupSeconds": startup}
            )
            deployment = cluster.deploy(workload)
            cluster.wait_ready(deployment, timeout=120)
            events = list(cluster.events())
        timings = spec.timings
        configured = timings.scheduler_delay + timings.pod_start_delay + (1.0 if probe is not None else 0.0)
        created = _events_by(events, "pod_created")
        ready = _events_by(events, "pod_ready")
        routed = _events_by(events, "endpoint_added")
        overhead = [ready[name] - created[name] - configured for name in ready]
        propagation = [routed[name] - ready[name] for name in routed]
        print(
            f"  {label:28} configured {configured:.2f}s  overhead median {statistics.median(overhead):.3f}s "
            f"max {max(overhead):.3f}s (target <= 0.3s)  endpoint after ready median "
            f"{statistics.median(propagation) * 1000:.0f}ms (propagation {timings.endpoint_propagation_delay * 1000:.0f}ms)"
        )


def bench_memory() -> None:
    """Total memory of 50 pods (+ the proxy) on 5 nodes."""
    with SimCluster(SimClusterSpec(nodes=MEMORY_NODES), seed=2) as cluster:
        started = time.monotonic()
        deployment = cluster.deploy(WorkloadSpec(name="web", replicas=MEMORY_PODS))
        cluster.wait_ready(deployment, timeout=300)
        elapsed = time.monotonic() - started
        rss = uss = 0
        count = 0
        for child in psutil.Process().children(recursive=True):
            try:
                info = child.memory_full_info()
            except psutil.NoSuchProcess:
                continue
            rss += info.rss
            uss += info.uss
            count += 1
        engine = psutil.Process().memory_info().rss
        before = psutil.Process().cpu_times()
        time.sleep(IDLE_SECONDS)
        after = psutil.Process().cpu_times()
        idle_cpu = (after.user + after.system - before.user - before.system) / IDLE_SECONDS
    mib = 1024 * 1024
    print(
        f"[memory] {MEMORY_PODS} pods on {MEMORY_NODES} nodes ready in {elapsed:.1f}s: {count} processes, "
        f"total RSS {rss / mib:.0f} MiB ({rss / mib / count:.1f} MiB each; target < 1024 MiB), "
        f"USS {uss / mib:.0f} MiB; engine process RSS {engine / mib:.0f} MiB, "
        f"control plane at rest {idle_cpu * 100:.1f} % of one core"
    )


def _cpu_seconds(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    times = process.cpu_times()
    return times.user + times.system


def _run_locust(
    locustfile: Path, url: str, wait: float, out: Path, proxy: psutil.Process | None = None
) -> dict[str, float]:
    env = dict(os.environ, BENCH_OUT=str(out), BENCH_WAIT=str(wait))
    argv = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary",
        "-u", str(LOCUST_USERS), "-r", str(LOCUST_USERS), "-t", f"{LOCUST_SECONDS}s",
        "--host", url, "--loglevel", "WARNING",
    ]  # fmt: skip
    cpu_before = _cpu_seconds(proxy)
    completed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=LOCUST_SECONDS + 120)
    cpu = _cpu_seconds(proxy) - cpu_before
    if not out.exists():
        raise RuntimeError(f"locust produced no result (exit {completed.returncode}): {completed.stderr[-2000:]}")
    data = json.loads(out.read_text())
    out.unlink()
    samples = data["samples"]
    return {
        "rps": data["rps"],
        "median_ms": statistics.median(samples) if samples else float("nan"),
        "failures": data["failures"],
        "proxy_us_per_request": cpu / len(samples) * 1e6 if samples else float("nan"),
    }


def bench_proxy() -> None:
    """Locust against one pod directly and through the Service proxy, side by side.

    Pinned to the user-space proxy: with the default `auto` the Service is in the kernel,
    its ClusterIP and the pod's IP exist only inside the run's network namespace, and a
    Locust on the host must not send to them. service_bench.py compares both paths."""
    with tempfile.TemporaryDirectory(prefix="chaoslab-bench-") as folder, SimCluster(
        SimClusterSpec(nodes=1, proxy_mode="userspace"), seed=3
    ) as cluster:
        locustfile = Path(folder) / "locustfile.py"
        locustfile.write_text(LOCUSTFILE)
        deployment: Deployment = cluster.deploy(WorkloadSpec(name="web", replicas=1))
        cluster.wait_ready(deployment, timeout=60)
        direct = "http://" + cluster.pods(deployment)[0].endpoint  # type: ignore[operator]
        service = cluster.service_url(deployment)
        proxy = next(
            child for child in psutil.Process().children() if any("proxy.py" in part for part in child.cmdline())
        )
        out = Path(folder) / "result.json"
        for shape, wait in (("saturating (no wait)", 0.0), (f"paced ({PACED_WAIT_SECONDS * 1000:.0f} ms wait)", PACED_WAIT_SECONDS)):
            results: dict[str, list[dict[str, float]]] = {"direct": [], "proxy": []}
            for round_number in range(ROUNDS):
                order = ("direct", "proxy") if round_number % 2 == 0 else ("proxy", "direct")
                for target in order:
                    url = direct if target == "direct" else service
                    results[target].append(_run_locust(locustfile, url, wait, out, proxy))
            summary = {
                target: (
                    statistics.median(r["rps"] for r in runs),
                    statistics.median(r["median_ms"] for r in runs),
                    sum(r["failures"] for r in runs),
                )
                for target, runs in results.items()
            }
            (d_rps, d_ms, d_fail), (p_rps, p_ms, p_fail) = summary["direct"], summary["proxy"]
            proxy_cpu = statistics.median(r["proxy_us_per_request"] for r in results["proxy"])
            print(
                f"[proxy] {shape}, {LOCUST_USERS} users x {LOCUST_SECONDS}s x {ROUNDS} round(s): "
                f"direct {d_rps:.0f} req/s median {d_ms:.2f} ms ({d_fail} failures) | "
                f"proxy {p_rps:.0f} req/s median {p_ms:.2f} ms ({p_fail} failures) | "
                f"throughput ratio {p_rps / d_rps:.2f} (target >= 0.60), "
                f"added median {p_ms - d_ms:+.2f} ms (target <= 1 ms); "
                f"proxy CPU {proxy_cpu:.0f} us/request"
            )


def main() -> None:
    bench_ready_latency()
    bench_memory()
    bench_proxy()


if __name__ == "__main__":
    main()
