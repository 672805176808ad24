"""The simulated HPA against pods that really burn CPU: measured, then decided as upstream.

Each pod runs a burner that spends a known share of a core (20 ms of CPU every 100 ms:
0.2 cores, 200 % of a 100m request). The test checks the CPU the controller saw against
that, and replays every evaluation through the algorithm (chaoslab.autoscaling) with the
utilisation it recorded: the same recommendation, the same replicas, in the same order.
"""

from __future__ import annotations

import math
import sys

import psutil

from chaoslab.autoscaling import History, decide, effective_rules
from chaoslab.cluster.base import AutoscalerSample, EventKind
from chaoslab.cluster.sim.cpu import cpu_seconds_by_group
from chaoslab.cluster.sim.processes import spawn

from tests.sim.helpers import FAST_TIMINGS, poll_until, workload

# 20 ms of CPU per 100 ms of wall time, by the thread's own CPU clock.
BURNER = (
    "import time\n"
    "while True:\n"
    "    start = time.monotonic()\n"
    "    end = time.thread_time() + 0.02\n"
    "    while time.thread_time() < end:\n"
    "        pass\n"
    "    time.sleep(max(0.0, 0.1 - (time.monotonic() - start)))\n"
)
HPA_TIMINGS = FAST_TIMINGS.model_copy(update={"metrics_resolution": 1.0, "hpa_sync_period": 2.0})


def test_cpu_of_a_process_group_is_what_the_kernel_counted(tmp_path) -> None:
    burner = spawn([sys.executable, "-c", BURNER], {}, "burner", tmp_path / "burner.log")
    try:
        poll_until(lambda: psutil.Process(burner.pid).cpu_times().user > 0.05, 30, "the burner used CPU")
        measured = cpu_seconds_by_group([burner.pgid])[burner.pgid]
        times = psutil.Process(burner.pid).cpu_times()
        kernel = times.user + times.system + times.children_user + times.children_system
        # Read a moment apart; the clock tick (10 ms) and that moment are the only difference.
        assert abs(measured - kernel) < 0.05, (measured, kernel)
        assert cpu_seconds_by_group([burner.pgid + 10_000_000]) == {}
    finally:
        burner.kill()


def test_hpa_scales_on_measured_cpu_exactly_as_the_algorithm_says(make_cluster) -> None:
    cluster = make_cluster(timings=HPA_TIMINGS)
    spec = workload(
        replicas=1,
        readiness_probe=None,
        command=[sys.executable, "-c", BURNER],
        resources={"requests": {"cpu": "100m"}},
        autoscaling={
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 100}}}],
        },
    )
    deployment = cluster.deploy(spec)
    cluster.wait_ready(deployment, 60)
    samples: list[AutoscalerSample] = []
    events = []

    def at_max_and_settled() -> bool:
        samples.extend(cluster.autoscaler_samples())
        events.extend(cluster.events())
        # Two evaluations at 3 pods that had metrics for all of them.
        full = [s for s in samples if s.current == 3 and s.ready == 3]
        return len(full) >= 2

    poll_until(at_max_and_settled, 120, f"3 replicas measured twice; samples so far: {samples}", interval=0.2)

    measured = [s for s in samples if s.utilization is not None and s.unready == 0 and s.missing == 0]
    assert measured, samples
    for sample in measured:
        # Each pod burns 0.2 cores of a 0.1 request: 200 %, less if the machine is busy.
        assert 100 <= sample.utilization <= 240, sample
        ratio = sample.utilization / sample.target
        expected = sample.current if abs(1 - ratio) <= 0.1 else math.ceil(ratio * sample.ready)
        assert sample.recommendation == expected, sample

    # The behaviour, replayed over the same evaluations, sets the same replicas.
    autoscaling = spec.autoscaling
    assert autoscaling is not None
    up, down = effective_rules(autoscaling, HPA_TIMINGS.hpa_downscale_stabilization)
    history = History()
    for sample in samples:
        if sample.recommendation is None:
            assert sample.desired == sample.current and sample.reason == "FailedGetResourceMetric"
            continue
        decision = decide(sample.current, sample.recommendation, autoscaling, up, down, history, sample.ts)
        history = decision.history
        assert (decision.desired, decision.reason) == (sample.desired, sample.reason), sample
    assert max(s.desired for s in samples) == 3  # maxReplicas, never beyond

    scaled = [e for e in events if e.kind is EventKind.HPA_SCALED]
    assert scaled and all("cpu=" in e.detail and "target=100%" in e.detail for e in scaled), scaled
    assert [int(e.detail.split("replicas=")[1].split()[0]) for e in scaled] == [
        s.desired for s in samples if s.desired != s.current
    ]
    poll_until(lambda: len([p for p in cluster.pods(deployment) if p.ready]) == 3, 60, "3 pods ready")

