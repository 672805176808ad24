"""A SIGKILLed engine, at random moments of a busy cluster, leaves nothing behind.

The death of the engine is the one exit chaoslab cannot clean up after by itself, so
the simulator's processes must go on their own: PDEATHSIG, the container shim and the
reaper (see chaoslab/cluster/sim/processes.py). Each of them has a window (a pod whose
process is still starting, a shim in the middle of a fork, a group stopped by a hung
node), so this test kills the engine at random moments while pods start, restart, stop
and freeze, and counts what is left: every process that inherited the iteration's
marker in its environment, and the cluster's temporary folder.

The same holds for a whole `chaoslab run` (Locust, the availability probe, the report's
Chromium): killed at a random moment of its phases, and once while it renders images.

`make test` runs a few iterations; `make stress` runs a few hundred
(CHAOSLAB_STRESS_ITERATIONS, CHAOSLAB_STRESS_RUNS) and prints how many left anything.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from tests.sim.helpers import poll_until

ITERATIONS = int(os.environ.get("CHAOSLAB_STRESS_ITERATIONS", "8"))
RUNS = int(os.environ.get("CHAOSLAB_STRESS_RUNS", "2"))
REPO = Path(__file__).resolve().parents[2]
# ~2 s to ready, 3 s warmup, 6 s measurement with a node crash, 3 s cooldown, then the report.
RUN_EXPERIMENT = REPO / "tests" / "engine" / "experiments" / "interrupt.yaml"
RUN_KILL_WITHIN_S = 20.0
# The longest the engine lives after its cluster is up: past pod start-up, into the
# loop of faults.
KILL_WITHIN_S = 2.0

# An engine that never rests: it deploys pods that fork (the hardest case for cleanup)
# and keeps deleting, killing, freezing and scaling them until it is SIGKILLed.
ENGINE = textwrap.dedent(
    """
    import random, sys, time
    from chaoslab.cluster.sim import SimCluster
    from chaoslab.spec import (ContainerKillFault, NodeHangFault, NodeRestoreFault, PodDeleteFault,
        ScaleFault, SimClusterSpec, TargetSpec, WorkloadSpec)

    cluster = SimCluster(SimClusterSpec(nodes=2, timings={"podStartDelay": 0.02, "backOffInitial": 0.05}))
    command = ["/bin/sh", "-c", "sleep 300 & exec " + sys.executable + " -m http.server --bind $(HOST) $(PORT)"]
    deployment = cluster.deploy(WorkloadSpec.model_validate({"name": "web", "replicas": 3, "command": command}))
    print("deployed", flush=True)
    rng = random.Random(int(sys.argv[1]))
    faults = [
        lambda: PodDeleteFault(action="pod-delete", at=0, target=TargetSpec(count=1), gracePeriodSeconds=0),
        lambda: ContainerKillFault(action="container-kill", at=0, target=TargetSpec(count=1)),
        lambda: NodeHangFault(action="node-hang", at=0, target=TargetSpec(name=rng.choice(["node-1", "node-2"]))),
        lambda: NodeRestoreFault(action="node-restore", at=0, target=TargetSpec(name=rng.choice(["node-1", "node-2"]))),
        lambda: ScaleFault(action="scale", at=0, replicas=rng.randint(1, 4)),
    ]
    for step in range(10_000):
        time.sleep(rng.uniform(0.0, 0.15))
        try:
            cluster.inject(deployment, rng.choice(faults)(), f"f{step}", rng)
        except Exception as exc:  # a fault with no target right now: go on
            print("skipped", type(exc).__name__, flush=True)
    """
)


def _marked(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("CHAOSLAB_STRESS") == marker and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _one_death(iteration: int, rng: random.Random, tmp: Path) -> list[str]:
    """Run one engine, SIGKILL it at a random moment; what it left behind, described."""
    marker, tmpdir, env = _marked_environment(f"it{iteration}", tmp)
    engine = subprocess.Popen(
        [sys.executable, "-c", ENGINE, str(iteration)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert engine.stdout.readline().strip() == "deployed", "the engine did not deploy"
        time.sleep(rng.uniform(0.0, KILL_WITHIN_S))
    finally:
        engine.kill()
        engine.wait()
        engine.stdout.close()
    return _left_behind(marker, tmpdir)


def _marked_environment(name: str, tmp: Path) -> tuple[str, Path, dict[str, str]]:
    marker = f"{os.getpid()}-{name}"
    tmpdir = tmp / name
    tmpdir.mkdir()
    return marker, tmpdir, dict(os.environ, CHAOSLAB_STRESS=marker, TMPDIR=str(tmpdir), PYTHONUNBUFFERED="1")


def _chromium_running(pid: int) -> bool:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return False
    for child in children:
        try:
            if "chrom" in child.name().lower():
                return True
        except psutil.NoSuchProcess:
            continue
    return False


def _one_run_death(name: str, rng: random.Random, tmp: Path, *, while_rendering: bool) -> list[str]:
    """`chaoslab run`, SIGKILLed at a random moment (or once Chromium renders its images)."""
    marker, tmpdir, env = _marked_environment(name, tmp)
    command = [sys.executable, "-m", "chaoslab", "run", str(RUN_EXPERIMENT), "--out", str(tmp / f"{name}-results")]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO)
    try:
        if while_rendering:
            poll_until(lambda: _chromium_running(run.pid) or run.poll() is not None, 180, "the report's Chromium")
            assert run.poll() is None, "the run ended before its images were rendered"
        else:
            time.sleep(rng.uniform(0.0, RUN_KILL_WITHIN_S))
    finally:
        run.kill()
        run.wait()
    return _left_behind(marker, tmpdir)


def _left_behind(marker: str, tmpdir: Path) -> list[str]:
    try:
        poll_until(lambda: not _marked(marker) and not any(tmpdir.iterdir()), 15, "nothing left", interval=0.1)
    except AssertionError:
        left = _marked(marker)
        described = [f"pid {p.pid} [{p.status()}] {' '.join(p.cmdline())[:120]}" for p in left]
        described += [f"file {path}" for path in tmpdir.iterdir()]
        for process in left:  # do not let one failure pollute the next iterations
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        return described
    return []


@pytest.mark.slow
def test_a_sigkilled_engine_leaves_no_process_and_no_file_at_any_moment(tmp_path):
    rng = random.Random(int(os.environ.get("CHAOSLAB_STRESS_SEED", "20261201")))
    leaks = {}
    for iteration in range(ITERATIONS):
        left = _one_death(iteration, rng, tmp_path)
        if left:
            leaks[iteration] = left
    print(f"{ITERATIONS} engine deaths, {len(leaks)} left something behind")
    assert not leaks, f"{len(leaks)} of {ITERATIONS} engine deaths left something: {leaks}"


@pytest.mark.slow
def test_a_sigkilled_chaoslab_run_leaves_nothing_outside_its_results(tmp_path):
    rng = random.Random(int(os.environ.get("CHAOSLAB_STRESS_SEED", "20261201")))
    leaks = {}
    for index in range(RUNS):
        left = _one_run_death(f"run{index}", rng, tmp_path, while_rendering=False)
        if left:
            leaks[f"run{index}"] = left
    left = _one_run_death("rendering", rng, tmp_path, while_rendering=True)
    if left:
        leaks["rendering"] = left
    print(f"{RUNS + 1} chaoslab runs killed, {len(leaks)} left something behind")
    assert not leaks, f"{len(leaks)} of {RUNS + 1} killed runs left something: {leaks}"
