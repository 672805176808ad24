"""Whether a real cluster is as its harness left it, for the suites that run on one.

tests/e2e (KWOK nodes, tests/e2e/localcluster.py) and tests/realnodes (kubelets in Docker,
tests/e2e/realnodes.py) hold every test to one rule: it starts on a clean cluster and must
leave it clean, and after a test that did not, the cluster is put back for the next one.
What "clean" means for the API objects is the same on both (no chaoslab namespace; every
node Ready, schedulable and untainted but for the control plane's own taint), so it lives
here once; what else a suite checks and restores (frozen KWOK processes, stopped node
containers, the host's sysctls) it adds in its conftest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from kubernetes import client as k8s

from tests.e2e import localcluster

# The label chaoslab puts on every namespace it creates (see chaoslab/cluster/kube/safety.py).
MANAGED_BY_SELECTOR = "app.kubernetes.io/managed-by=chaoslab"


def chaoslab_namespaces(core: k8s.CoreV1Api) -> list[str]:
    return [ns.metadata.name for ns in core.list_namespace(label_selector=MANAGED_BY_SELECTOR).items]


def api_problems(core: k8s.CoreV1Api) -> list[str]:
    """What the API shows that a harness's `up` did not leave: chaoslab namespaces, and
    cordoned, not Ready or tainted nodes."""
    problems = [f"namespace {name} left behind" for name in chaoslab_namespaces(core)]
    for node in core.list_node().items:
        name = node.metadata.name
        ready = next((c.status for c in node.status.conditions or () if c.type == "Ready"), "Unknown")
        if node.spec.unschedulable:
            problems.append(f"node {name} is cordoned")
        if ready != "True":
            problems.append(f"node {name} is Ready={ready}")
        for taint in node.spec.taints or ():
            if taint.key != localcluster.CONTROL_PLANE_LABEL:
                problems.append(f"node {name} has taint {taint.key}:{taint.effect}")
    return problems


def settled(problems: Callable[[], list[str]], settle_s: float, poll_s: float) -> list[str]:
    """`problems()` once it is empty, or as it is after `settle_s` seconds (the controllers
    finish what a test started a moment after it: a node's taints lifted once it is Ready
    again, a namespace's last pods deleted)."""
    deadline = time.monotonic() + settle_s
    while True:
        found = problems()
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(poll_s)


def repair_api(core: k8s.CoreV1Api) -> None:
    """Uncordon every node and delete every chaoslab namespace (after a test that left them)."""
    for node in core.list_node().items:
        if node.spec.unschedulable:
            core.patch_node(node.metadata.name, {"spec": {"unschedulable": False}})
    for name in chaoslab_namespaces(core):
        core.delete_namespace(name)


def wait_until_clean(problems: Callable[[], list[str]], timeout_s: float) -> None:
    """Wait, for at most `timeout_s`, until `problems()` is empty (the repair took effect)."""
    deadline = time.monotonic() + timeout_s
    while problems() and time.monotonic() < deadline:
        time.sleep(1.0)


@contextmanager
def left_clean(
    cluster: str, problems: Callable[[], list[str]], repair: Callable[[], None], *, settle_s: float, poll_s: float
) -> Iterator[None]:
    """Around one test: the cluster must be clean (`settled`) before it and after it; when it
    is not after it, `repair()` puts it back for the next test before this one fails."""
    before = settled(problems, settle_s, poll_s)
    assert not before, f"the {cluster} was not clean before the test: {before}"
    yield
    after = settled(problems, settle_s, poll_s)
    if after:
        repair()
    assert not after, f"the test left the cluster changed: {after}"
