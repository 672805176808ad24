"""The simulated StatefulSet controller and pod volumes (claims and emptyDirs).

Why it exists: what a StatefulSet promises under faults (a stable name, the same data,
never two pods with one identity) is decided by its controller and by volume lifetimes,
not by the app. Both are modelled on upstream behaviour, each rule cited:

- Stable names: "For a StatefulSet with N replicas, each Pod in the StatefulSet will be
  assigned an integer ordinal, that is unique over the Set", named `$(statefulset
  name)-$(ordinal)`, ordinals 0..N-1 (kubernetes.io/docs/concepts/workloads/controllers/
  statefulset/#pod-identity). A deleted pod is recreated with the same name, on whichever
  node the scheduler picks.
- Stable storage: "for each VolumeClaimTemplate entry defined in a StatefulSet, each Pod
  receives one PersistentVolumeClaim", named `<template>-<statefulset>-<ordinal>`; "When
  a Pod is (re)scheduled onto a node, its volumeMounts mount the PersistentVolumes
  associated with its PersistentVolume Claims. Note that, the PersistentVolumes
  associated with the Pods' PersistentVolume Claims are not deleted when the Pods, or
  StatefulSet are deleted" (same page, #stable-storage). Here a claim is a folder under
  the cluster's work folder, kept across pod deletions and node crashes; chaoslab's
  teardown removes it (a real cluster keeps PVCs unless deleted; our kubernetes backend
  deletes them too). Sim simplification: the claim is reachable from every node (network
  storage); the attach/detach of a ReadWriteOnce volume to a new node is not modelled.
- emptyDir: "An emptyDir volume is first created when a Pod is assigned to a node, and
  exists as long as that Pod is running on that node ... When a Pod is removed from a
  node for any reason, the data in the emptyDir is deleted permanently. Note: A container
  crashing does not remove a Pod from a node. The data in an emptyDir volume is safe
  across container crashes." (kubernetes.io/docs/concepts/storage/volumes/#emptydir).
- OrderedReady (the default podManagementPolicy): "When Pods are being deployed, they are
  created sequentially, in order from {0..N-1}. ... Before a scaling operation is applied
  to a Pod, all of its predecessors must be Running and Ready. Before a Pod is
  terminated, all of its successors must be completely shutdown." and "When Pods are
  being deleted, they are terminated in reverse order, from {N-1..0}"
  (#deployment-and-scaling-guarantees). Parallel: "launch or terminate all Pods in
  parallel, and to not wait for Pods to become Running and Ready or completely terminated
  prior to launching or terminating another Pod" (#parallel-pod-management).
- At most one pod per identity: "StatefulSet ensures that, at any time, there is at most
  one Pod with a given identity running in a cluster" and "Kubernetes (versions 1.5 or
  newer) will not delete Pods just because a Node is unreachable. The Pods running on an
  unreachable Node enter the 'Terminating' or 'Unknown' state after a timeout"; such a
  pod goes only when the kubelet answers again or it is force deleted (`kubectl delete
  pods <pod> --grace-period=0 --force`) (kubernetes.io/docs/tasks/run-application/
  force-delete-stateful-set-pod/; kubernetes/kubernetes#54368: "This is by design").
  So the controller creates a pod only when no pod object with its name exists: a pod
  evicted from a crashed node stays Terminating and blocks its replacement. A
  Deployment's ReplicaSet counts only pods that are not terminating, so it replaces at
  once (controllers.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from chaoslab.cluster.sim.state import SimDeployment, SimPod, World
from chaoslab.spec import VOLUME_CLAIM, VOLUME_EMPTY_DIR

CreatePod = Callable[[SimDeployment, float, str], SimPod]


def claim_name(deployment: SimDeployment, ordinal: int) -> str:
    """The PersistentVolumeClaim of one ordinal: `<template>-<statefulset>-<ordinal>`."""
    volume = deployment.spec.volume
    assert volume is not None
    return f"{volume.name}-{deployment.name}-{ordinal}"


def ordinal_of(deployment: SimDeployment, pod_name: str) -> int | None:
    prefix = f"{deployment.name}-"
    suffix = pod_name[len(prefix) :] if pod_name.startswith(prefix) else ""
    return int(suffix) if suffix.isdigit() else None


class Volumes:
    """Where pods' data lives on this machine: `<root>/claims/<claim>` and `<root>/pods/<pod>`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def attach(self, deployment: SimDeployment, pod: SimPod) -> None:
        """Give a new pod its data folder: its ordinal's claim, or a fresh emptyDir."""
        volume = deployment.spec.volume
        if volume is None:
            return
        if volume.type == VOLUME_CLAIM:
            ordinal = ordinal_of(deployment, pod.name)
            assert ordinal is not None, f"a claim for a pod without an ordinal: {pod.name}"
            folder = self.root / "claims" / claim_name(deployment, ordinal)
        else:
            assert volume.type == VOLUME_EMPTY_DIR
            folder = self.root / "pods" / f"{pod.name}-{pod.sequence}"
            pod.scratch = True
        folder.mkdir(parents=True, exist_ok=True)
        pod.data_dir = folder

    def claims(self, deployment: SimDeployment) -> list[Path]:
        folder = self.root / "claims"
        if deployment.spec.volume is None or not folder.is_dir():
            return []
        prefix = f"{deployment.spec.volume.name}-{deployment.name}-"
        return sorted(p for p in folder.iterdir() if p.name.startswith(prefix))

    def remove_claims(self, deployment: SimDeployment) -> None:
        """Teardown: delete the workload's claims (chaoslab cleans up what it created)."""
        for folder in self.claims(deployment):
            shutil.rmtree(folder)


class StatefulSetController:
    """Reconciles every StatefulSet of the world; `tick` once per control-plane tick."""

    def __init__(self, world: World, create_pod: CreatePod) -> None:
        self.world = world
        self.create_pod = create_pod

    def tick(self, now: float) -> None:
        for deployment in self.world.deployments.values():
            if deployment.spec.stateful:
                self._sync(deployment, now)

    def _sync(self, deployment: SimDeployment, now: float) -> None:
        actions = self._plan(deployment)
        if not deployment.sync_due_now(bool(actions), now, self.world.timings.controller_sync_delay):
            return
        grace = float(deployment.spec.termination_grace_period_seconds)
        for kind, name in actions:
            if kind == "create":
                self.create_pod(deployment, now, name)
            else:
                self.world.delete_pod(deployment.pods[name], grace, reason="StatefulSet", now=now)

    def _plan(self, deployment: SimDeployment) -> list[tuple[str, str]]:
        """What to do now: ("create", name) and ("delete", name) in order."""
        ordered = deployment.spec.effective_pod_management_policy() == "OrderedReady"
        actions: list[tuple[str, str]] = []
        for name in deployment.spec.ordinal_names(deployment.desired):
            pod = deployment.pods.get(name)
            if pod is None:
                actions.append(("create", name))
                if ordered:
                    return actions  # its successors wait until it is Running and Ready
                continue
            if ordered and not (pod.ready and not pod.terminating):
                return actions
        condemned = sorted(
            (pod for pod in deployment.pods.values() if (ordinal_of(deployment, pod.name) or 0) >= deployment.desired),
            key=lambda pod: -(ordinal_of(deployment, pod.name) or 0),
        )
        for pod in condemned:
            if pod.terminating:
                if ordered:
                    return actions  # the next one waits until this one is completely shut down
                continue
            actions.append(("delete", pod.name))
            if ordered:
                return actions
        return actions
