"""A StatefulSet with claims on the real control plane: the real StatefulSet controller
names its pods and claims, the PersistentVolume controller binds the claims to volumes
this test provides, a deleted pod comes back with its name and its claim, and teardown
removes the claims with everything else.

The local control plane has no storage provisioner, so the test brings its own: a
StorageClass (no provisioner, Immediate binding) marked default, and hostPath
PersistentVolumes of it, removed again at the end (they are cluster-scoped, not in the
run's namespace).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from pydantic import TypeAdapter

from chaoslab.cluster.base import EventKind
from chaoslab.spec import FaultSpec
from tests.e2e.conftest import EVENT_DEADLINE_SECONDS, EventLog, pods_by_node, workload
from tests.sim.helpers import poll_until

pytestmark = pytest.mark.e2e

FAULT = TypeAdapter(FaultSpec)
STORAGE_CLASS = "chaoslab-e2e-local"
VOLUMES = ("chaoslab-e2e-pv-0", "chaoslab-e2e-pv-1", "chaoslab-e2e-pv-2")


@pytest.fixture
def local_volumes(kube: k8s.ApiClient, core: k8s.CoreV1Api) -> Iterator[None]:
    storage = k8s.StorageV1Api(kube)
    storage.create_storage_class(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "Immediate",
        }
    )
    for name in VOLUMES:
        core.create_persistent_volume(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": name},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": STORAGE_CLASS,
                    "hostPath": {"path": f"/tmp/{name}"},  # never mounted: KWOK runs no container
                },
            }
        )
    yield
    for name in VOLUMES:
        _ignore_missing(lambda name=name: core.delete_persistent_volume(name))
    _ignore_missing(lambda: storage.delete_storage_class(STORAGE_CLASS))


def _ignore_missing(call) -> None:
    try:
        call()
    except ApiException as exc:
        if exc.status != 404:
            raise


def _wait(what: str, check) -> object:
    return poll_until(check, EVENT_DEADLINE_SECONDS, what, interval=0.5)


def test_a_statefulset_keeps_its_names_and_claims_and_teardown_removes_them(open_kube, core: k8s.CoreV1Api, local_volumes) -> None:
    cluster = open_kube()
    log = EventLog(cluster)
    spec = workload(name="db", kind="StatefulSet", image="chaoslab/kv", replicas=2, volume={"size": "1Gi"})
    deployment = cluster.deploy(spec)
    cluster.wait_ready(deployment, timeout=120)
    namespace = deployment.namespace

    assert sorted(p.name for p in cluster.pods(deployment)) == ["db-0", "db-1"]
    def bound() -> dict[str, k8s.V1PersistentVolumeClaim] | None:
        items = core.list_namespaced_persistent_volume_claim(namespace).items
        return {c.metadata.name: c for c in items} if len(items) == 2 and all(c.status.phase == "Bound" for c in items) else None

    claims = _wait("both claims Bound", bound)
    assert sorted(claims) == ["data-db-0", "data-db-1"]
    assert {c.spec.storage_class_name for c in claims.values()} == {STORAGE_CLASS}  # the default class
    volume_of_db0 = claims["data-db-0"].spec.volume_name
    ordinal = core.read_namespaced_service("db-0", namespace)
    assert ordinal.spec.selector["statefulset.kubernetes.io/pod-name"] == "db-0"
    assert cluster.ordinal_url(deployment, 0).endswith(f":{ordinal.spec.ports[0].node_port}")

    fault = FAULT.validate_python({"at": 0, "action": "pod-delete", "target": {"name": "db-0"}})
    cluster.inject(deployment, fault, "f0", random.Random(3))
    log.wait_for(lambda log: bool(log.of(EventKind.POD_DELETED, "db-0")), "db-0 deleted")
    cluster.wait_ready(deployment, timeout=120)
    assert sorted(p.name for p in cluster.pods(deployment)) == ["db-0", "db-1"]
    again = core.read_namespaced_persistent_volume_claim("data-db-0", namespace)
    assert again.metadata.uid == claims["data-db-0"].metadata.uid and again.spec.volume_name == volume_of_db0

    cluster.teardown(deployment)
    with pytest.raises(ApiException) as gone:
        core.read_namespace(namespace)
    assert gone.value.status == 404
    # The claims went with the namespace: their volumes are Released (Retain keeps them).
    _wait("the volume of data-db-0 released", lambda: core.read_persistent_volume(volume_of_db0).status.phase == "Released")


def test_a_pod_on_a_lost_node_keeps_its_identity_until_force_deleted(local, open_kube) -> None:
    """The real StatefulSet controller does not replace a pod the taint manager evicted
    from a frozen node: the object stays Terminating (no kubelet confirms), its name
    stays taken. A force delete (pod-delete force: true) frees it: the same name again,
    on another node."""
    # The scheduler may stack the pods on one KWOK node: allow the fault to take them all.
    cluster = open_kube(maxBlastRadius="100%")
    log = EventLog(cluster)
    deployment = cluster.deploy(workload(name="db", kind="StatefulSet", replicas=3, tolerationSeconds=3))
    cluster.wait_ready(deployment, timeout=120)
    placement = pods_by_node(cluster, deployment)

    crash = FAULT.validate_python({"at": 0, "action": "node-crash", "target": {"count": 1}})
    injection = cluster.inject(deployment, crash, "f0", random.Random(3))
    (node,) = injection.targets
    victims = set(placement[node])
    log.wait_for(lambda log: victims <= {e.name for e in log.of(EventKind.POD_EVICTED)}, f"the pods of {node} evicted")

    # The identity stays taken: for 10 s (the StatefulSet controller syncs on every pod
    # change) each victim is one Terminating pod on the lost node, and no other exists.
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        pods = {p.name: p for p in cluster.pods(deployment)}
        for victim in victims:
            assert (pods[victim].phase, pods[victim].node) == ("Terminating", node), pods[victim]
        time.sleep(0.5)

    force = FAULT.validate_python({"at": 0, "action": "pod-delete", "force": True, "target": {"count": len(victims)}})
    assert set(cluster.inject(deployment, force, "f1", random.Random(3)).targets) == victims

    def back_elsewhere() -> bool:
        pods = {p.name: p for p in cluster.pods(deployment)}
        return all(v in pods and pods[v].ready and pods[v].node not in (None, node) for v in victims)

    poll_until(back_elsewhere, EVENT_DEADLINE_SECONDS, "the same names back, on other nodes")
    cluster.restore(injection)
    cluster.teardown(deployment)
