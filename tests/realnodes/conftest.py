"""Fixtures for the real-node tests: chaoslab on real kubelets in Docker containers.

`make e2e-nodes` starts the control plane and the node containers (tests/e2e/realnodes.py)
and stops them after; these fixtures only find them through their state folder, and
fail with the command to run when they are not there (never a silent skip: a machine
where containers cannot run fails `realnodes.py up` with the reason).

Experiments run as a user runs them: `chaoslab run experiments/<lesson>.yaml --backend
kubernetes` in a subprocess, aimed at the nodes by `--set`s (kubeconfig, context, the
local Python image, the docker node provider on the suite's own dockerd). What the
tests check is read from the results folder, and every test must leave the cluster as
it found it: no chaoslab namespace, every node container running, every node Ready,
schedulable and untainted, and the host's watched sysctls unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes.config import new_client_from_config

from chaoslab.results import RunData, read_run
from tests import cleancluster
from tests.e2e import realnodes
from tests.e2e.realnodes import State
from tests.engine.conftest import chaoslab_command
from tests.experiments.lessons import LIBRARY, completed

REPO = Path(__file__).resolve().parents[2]
# The lessons' own bounds are inside the experiment; this bounds a whole `chaoslab run`
# (deploy, trials, teardown, restore of crashed nodes) on a shared 2-core machine.
RUN_TIMEOUT_SECONDS = 900.0
# How long the cleanliness check waits for the controllers to finish what a test started
# (a restored node's taints lifted, a namespace's last pods deleted).
SETTLE_SECONDS = 60.0
# How long a repair after a failed test may take to show.
REPAIR_SECONDS = 120.0


@pytest.fixture(scope="session")
def nodes() -> State:
    """The running real-node cluster, or a failure that says how to start it."""
    state_dir = realnodes.default_state_dir(os.environ)
    state = realnodes.read_state(state_dir)
    if state is None or not state.ready:
        pytest.fail(
            f"no real nodes are running (no ready {state_dir}/state.json): run `make e2e-nodes` "
            "(starts them, runs these tests, removes them), or `make e2e-nodes-up` first",
            pytrace=False,
        )
    return state


@pytest.fixture(scope="session")
def core(nodes: State) -> Iterator[k8s.CoreV1Api]:
    api_client = new_client_from_config(config_file=nodes.kubeconfig, context=nodes.context, persist_config=False)
    yield k8s.CoreV1Api(api_client)
    api_client.close()


def docker(state: State, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "DOCKER_HOST": state.docker_host},
    )


def container_states(state: State) -> dict[str, str]:
    shown = docker(state, "ps", "-a", "--format", "{{.Names}} {{.State}}").stdout.split("\n")
    return dict(line.split(" ", 1) for line in shown if line.strip())


def target_overrides(state: State) -> list[str]:
    """The command-line arguments that aim an experiment file at the real nodes."""
    provider = {"type": "docker", "dockerHost": state.docker_host}
    return [
        "--backend", "kubernetes",
        "--set", f"cluster.kubernetes.kubeconfig={state.kubeconfig}",
        "--set", f"cluster.kubernetes.context={state.context}",
        "--set", f"cluster.kubernetes.allowContexts=[{state.context}]",
        "--set", f"cluster.kubernetes.pythonImage={realnodes.PYTHON_IMAGE}",
        "--set", f"cluster.kubernetes.nodeProvider={json.dumps(provider)}",
    ]


@dataclass(frozen=True)
class LessonRun:
    code: int
    stdout: str
    stderr: str
    run: RunData
    seconds: float


@pytest.fixture
def run_on_nodes(nodes: State, tmp_path: Path) -> Callable[..., LessonRun]:
    """`chaoslab run <file> --backend kubernetes ...` on the real nodes, to completion."""
    counter = iter(range(1, 100))

    def run(experiment: str | Path, *overrides: str, exit_codes: Sequence[int] = (0, 1)) -> LessonRun:
        path = experiment if isinstance(experiment, Path) else LIBRARY / experiment
        out_root = tmp_path / f"results-{next(counter)}"
        started = time.monotonic()
        proc = subprocess.run(
            chaoslab_command("run", str(path), "--out", str(out_root), "--no-images", *target_overrides(nodes), *overrides),
            capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        seconds = time.monotonic() - started
        assert proc.returncode in exit_codes, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        folders = [p for p in out_root.iterdir() if p.is_dir()]
        assert len(folders) == 1, (folders, proc.stderr[-3000:])
        results = read_run(folders[0])
        completed(results)
        return LessonRun(proc.returncode, proc.stdout, proc.stderr, results, seconds)

    return run


def cluster_problems(state: State, core: k8s.CoreV1Api) -> list[str]:
    """What is not as `up` left it, read with the official client (`cleancluster.api_problems`)
    and the docker CLI: node containers not running, host sysctls changed."""
    problems = cleancluster.api_problems(core)
    states = container_states(state)
    for record in state.nodes:
        if states.get(record.name) != "running":
            problems.append(f"node container {record.name} is {states.get(record.name, 'missing')}")
    recorded = dict(state.host_sysctls)
    for key, value in realnodes.read_sysctls(tuple(recorded)).items():
        if value != recorded[key]:
            problems.append(f"host sysctl {key} is {value}, was {recorded[key]}")
    return problems


def settled_problems(state: State, core: k8s.CoreV1Api) -> list[str]:
    return cleancluster.settled(lambda: cluster_problems(state, core), SETTLE_SECONDS, 1.0)


@pytest.fixture(autouse=True)
def cluster_left_clean(nodes: State, core: k8s.CoreV1Api) -> Iterator[None]:
    """Each test starts on a clean cluster and must leave it clean (teardown is ours to prove)."""
    with cleancluster.left_clean(
        "real-node cluster", lambda: cluster_problems(nodes, core), lambda: _repair(nodes, core), settle_s=SETTLE_SECONDS, poll_s=1.0
    ):
        yield


def _repair(state: State, core: k8s.CoreV1Api) -> None:
    """Put the cluster back for the next test after one failed (not a substitute for teardown)."""
    for name, status in container_states(state).items():
        if status == "paused":
            docker(state, "unpause", name)
        elif status != "running":
            docker(state, "start", name)
    cleancluster.repair_api(core)
    cleancluster.wait_until_clean(lambda: cluster_problems(state, core), REPAIR_SECONDS)


def save_numbers(name: str, result: LessonRun) -> Path:
    """Keep a lesson's summary.csv under results/realnodes/ (git-ignored) for the
    calibration notes, with the run's wall time; returns the copy."""
    folder = REPO / "results" / "realnodes"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}-summary.csv"
    target.write_text((result.run.path / "summary.csv").read_text())
    (folder / f"{name}-wall.txt").write_text(f"{result.seconds:.1f}\n")
    print(f"{name}: {result.seconds:.0f}s on real nodes; summary in {target}")
    return target
