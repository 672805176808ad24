"""container-crashloop: each crash of the same container keeps it down longer (CrashLoopBackOff)."""

from __future__ import annotations

import re

import pytest

from chaoslab import analysis
from tests.experiments.lessons import events_of, measure_window, summary_rows

pytestmark = pytest.mark.slow

# Back-offs 0, 1, 2 s (backOffInitial 1s, doubling); a kill every 4 s finds the container
# running again each time; the last restart comes 2 s after the kill at 9 s. The kubelet
# notices a death at its PLEG relist: every 0.2 s here (Kubernetes: 1 s), so that its
# jitter stays well under the 1 s steps of the back-off.
SHORT = (
    "--set", "cluster.sim.timings.backOffInitial=1s",
    "--set", "cluster.sim.timings.plegRelistPeriod=0.2s",
    "--set", "faults.0.at=1s",
    "--set", "faults.0.every=4s",
    "--set", "faults.0.repeat=3",
    "--set", "workload.app.startupSeconds=0.3",
    "--set", "timeline.warmup=1s",
    "--set", "timeline.duration=13s",
)
# Slack for the control-plane tick and a busy machine; the back-offs differ by >= 1 s.
SLACK_S = 0.5


def test_restart_count_grows_and_every_restart_waits_longer(run_lesson) -> None:
    run = run_lesson("container-crashloop.yaml", *SHORT)
    (trial,) = run.trials

    restarts = events_of(trial, "container_restarted")
    counts = [int(re.search(r"restartCount=(\d+)", detail).group(1)) for detail in restarts["detail"]]
    assert counts == [1, 2, 3], restarts
    assert restarts["name"].nunique() == 1, "the same pod restarts in place"

    # The wait between a container's death and its restart: the back-off, doubling.
    died = events_of(trial, "container_died")
    died = died[died["name"] == restarts["name"].iloc[0]]
    waits = [
        float(restart_ts) - float(died[died["ts"] <= restart_ts]["ts"].iloc[-1]) for restart_ts in restarts["ts"]
    ]
    assert waits[0] < SLACK_S, waits  # the first restart is immediate
    assert waits[1] > waits[0] + 1 - SLACK_S, waits
    assert waits[2] > waits[1] + 1 - SLACK_S, waits

    # What clients see: the outages grow. Not each one strictly: while the pod is out of
    # the Service, kube-proxy's reject answers within the kernel's ICMP budget and the
    # other SYNs are retransmitted a second later, so part of a short outage shows as
    # latency, not failures (the kernel Service path, as on real nodes, whose lesson
    # test asserts the same).
    windows = summary_rows(run).sort_values("fault_ts")["error_window_s"].tolist()
    assert len(windows) == 3 and all(w > 0 for w in windows), windows
    assert windows[2] > windows[0] + 1 - SLACK_S, windows

    # The recovery timeline chart draws the waits as "restarting" bars: they grow too.
    states = analysis.pod_states(trial.events, *measure_window(trial))
    restarting = states[states["state"] == "restarting"]
    bars = [span for span in (restarting["end_ts"] - restarting["start_ts"]).tolist() if span > SLACK_S]
    assert len(bars) == 2 and bars[1] > bars[0] + 1 - SLACK_S, bars
