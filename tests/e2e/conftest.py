"""Fixtures for the end-to-end tests: our kubernetes backend on the local control plane.

The control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, KWOK
nodes) is started by `make e2e` / `make k8s-local` (tests/e2e/localcluster.py); these
fixtures only find it through its state folder, and fail with the command to run when it
is not there. Clusters are opened the way `chaoslab run` opens them (`open_cluster` with
backend kubernetes and the generated kubeconfig), with the `command` node provider
freezing and resuming a node's KWOK process.

What the tests check is read back with the official client, independently of our
wrapper, and every test must leave the cluster as it found it (`cluster_left_clean`).
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.config import new_client_from_config

from chaoslab.cluster import open_cluster
from chaoslab.cluster.base import Cluster
from chaoslab.spec import ClusterSpec, KubernetesClusterSpec, WorkloadSpec
from tests import cleancluster, eventlog
from tests.cleancluster import MANAGED_BY_SELECTOR, chaoslab_namespaces  # noqa: F401 - the e2e tests import them from here
from tests.e2e import localcluster
from tests.e2e.localcluster import State

# Deadline for what the real controllers do in seconds (scheduling, KWOK readiness,
# endpoint updates), generous for a shared 2-core machine.
EVENT_DEADLINE_SECONDS = 120.0
# How long the cleanliness check waits for the controllers to finish what a test started
# (taints lifted, a namespace's last pods deleted).
SETTLE_SECONDS = 30.0
# How often EventLog drains the backend's watch events while waiting.
POLL_SECONDS = 0.2


@pytest.fixture(scope="session")
def local() -> State:
    """The running local control plane, or a failure that says how to start it."""
    state_dir = localcluster.default_state_dir(os.environ)
    state = localcluster.read_state(state_dir)
    if state is None or not state.ready:
        pytest.fail(
            f"the local Kubernetes control plane is not running (no ready {state_dir}/state.json): "
            "run `make k8s-local` first, or `make e2e` to start it, test and stop it",
            pytrace=False,
        )
    dead = [r.name for r in state.processes if not localcluster.is_ours(r)]
    if dead:
        pytest.fail(f"local control plane processes exited: {', '.join(dead)}; see `make k8s-local` logs", pytrace=False)
    return state


@pytest.fixture(scope="session")
def kube(local: State) -> Iterator[k8s.ApiClient]:
    """The official client on the same kubeconfig: the independent view of the cluster."""
    api_client = new_client_from_config(config_file=local.kubeconfig, context=local.context, persist_config=False)
    yield api_client
    api_client.close()


@pytest.fixture(scope="session")
def core(kube: k8s.ApiClient) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(kube)


def node_command(state: State, action: str) -> str:
    """A shell command for the `command` node provider; the backend fills in {node}."""
    script = Path(localcluster.__file__).resolve()
    return " ".join(
        [shlex.quote(sys.executable), shlex.quote(str(script)), "--state-dir", shlex.quote(state.state_dir), "node", action, "{node}"]
    )


def kwok_state(state: State, node: str) -> str:
    """running | paused: whether the node's KWOK process (its kubelet) is frozen."""
    return localcluster.node_action(Path(state.state_dir), "state", node)


def kube_spec(state: State, **fields: Any) -> KubernetesClusterSpec:
    """`cluster.kubernetes` for the local control plane, as an experiment file would say it."""
    base: dict[str, Any] = {
        "kubeconfig": state.kubeconfig,
        "context": state.context,
        "allowContexts": [state.context],
        "nodeProvider": {
            "type": "command",
            # KWOK has no machine to kill: freezing its process stops the node's Lease and
            # status updates, which is what the control plane sees of a crash or a hang.
            "crash": node_command(state, "stop"),
            "hang": node_command(state, "stop"),
            "restore": node_command(state, "resume"),
            "status": node_command(state, "state"),
            "timeout": "30s",
        },
    }
    base.update(fields)
    return KubernetesClusterSpec.model_validate(base)


@pytest.fixture
def open_kube(local: State) -> Iterator[Callable[..., Cluster]]:
    """Opens our backend on the local cluster like `chaoslab run` does; closes it after."""
    opened: list[Cluster] = []

    def make(*, yes: bool = False, **fields: Any) -> Cluster:
        spec = ClusterSpec(backend="kubernetes", kubernetes=kube_spec(local, **fields))
        cluster = open_cluster(spec, yes=yes)
        opened.append(cluster)
        return cluster

    yield make
    for cluster in opened:
        cluster.close()


def workload(**fields: Any) -> WorkloadSpec:
    """A workload for KWOK nodes: any image (nothing is pulled), fast grace periods."""
    base: dict[str, Any] = {
        "name": "web",
        "image": "registry.invalid/chaoslab-e2e:never-pulled",
        "replicas": 3,
        "readinessProbe": {"httpGet": {"path": "/readyz"}, "periodSeconds": 1},
        "terminationGracePeriodSeconds": 1,
    }
    base.update(fields)
    return WorkloadSpec.model_validate(base)


class EventLog(eventlog.EventLog):
    deadline_s = EVENT_DEADLINE_SECONDS
    poll_s = POLL_SECONDS


def pods_by_node(cluster: Cluster, deployment: Any) -> dict[str, list[str]]:
    placed: dict[str, list[str]] = {}
    for pod in cluster.pods(deployment):
        if pod.node and pod.phase != "Terminating":
            placed.setdefault(pod.node, []).append(pod.name)
    return placed


def cluster_problems(state: State, core: k8s.CoreV1Api) -> list[str]:
    """What is not as `up` left it: chaoslab namespaces, cordoned, tainted or not Ready
    nodes (`cleancluster.api_problems`), frozen KWOK processes."""
    problems = cleancluster.api_problems(core)
    for record in state.processes:
        if record.name.startswith("kwok/") and localcluster.process_state(record.pid) == "T":
            problems.append(f"{record.name} is frozen")
    return problems


def settled_problems(state: State, core: k8s.CoreV1Api) -> list[str]:
    """`cluster_problems` once the controllers had time to settle (the node-lifecycle
    controller lifts a node's taints a moment after it is Ready again)."""
    return cleancluster.settled(lambda: cluster_problems(state, core), SETTLE_SECONDS, 0.5)


@pytest.fixture(autouse=True)
def cluster_left_clean(local: State, core: k8s.CoreV1Api) -> Iterator[None]:
    """Each test starts on a clean cluster and must leave it clean (teardown is ours to prove)."""
    with cleancluster.left_clean(
        "local cluster", lambda: cluster_problems(local, core), lambda: _repair(local, core), settle_s=SETTLE_SECONDS, poll_s=0.5
    ):
        yield


def _repair(state: State, core: k8s.CoreV1Api) -> None:
    """Put the cluster back for the next test after one failed (not a substitute for teardown)."""
    for record in state.processes:
        if record.name.startswith("kwok/") and localcluster.is_ours(record):
            os.kill(record.pid, signal.SIGCONT)
    cleancluster.repair_api(core)
    cleancluster.wait_until_clean(lambda: cluster_problems(state, core), EVENT_DEADLINE_SECONDS)
