"""StatefulSets on sim: stable names, ordered start and scale-down, volumes that outlive pods,
at most one pod per identity, and the per-ordinal address the data-integrity load uses.

Real pod processes (chaoslab/kv) and real HTTP through the per-ordinal Service.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass

from chaoslab.cluster.network import HOST_NETWORK, ClientNetwork, connection_to
from chaoslab.spec import ContainerKillFault, NodeCrashFault, PodDeleteFault, ScaleFault, TargetSpec

from tests.sim.helpers import EventRecorder, poll_until, workload


def stateful(**fields: object):
    base: dict[str, object] = {"name": "db", "kind": "StatefulSet", "image": "chaoslab/kv", "replicas": 3}
    base.update(fields)
    return workload(**base)


@dataclass(frozen=True)
class Target:
    """A Service URL and the network it exists in (a sim cluster's may be private)."""

    url: str
    network: ClientNetwork


def ordinal(cluster, deployment, number: int) -> Target:
    return Target(cluster.ordinal_url(deployment, number), cluster.client_network())


def request(
    target: Target | str, method: str, path: str, body: str | None = None
) -> tuple[int, dict[str, str], dict]:
    """One request on a new connection: (status, X-Chaoslab-* headers, JSON body); (0, {}, {}) when it failed.
    A plain URL is on this machine's loopback (a kv process the test started itself)."""
    if isinstance(target, str):
        target = Target(target, HOST_NETWORK)
    connection = connection_to(target.url, 2.0, target.network)
    try:
        connection.request(method, path, body=body.encode() if body is not None else None)
        response = connection.getresponse()
        payload = json.loads(response.read() or b"{}")
    except (OSError, http.client.HTTPException):
        return 0, {}, {}
    finally:
        connection.close()
    headers = {k.removeprefix("X-Chaoslab-").lower(): v for k, v in response.getheaders() if k.startswith("X-Chaoslab-")}
    return response.status, headers, payload


def identity(url: Target | str) -> dict:
    status, _, body = request(url, "GET", "/identity")
    return body if status == 200 else {}


def test_ordered_ready_creates_stable_names_in_order(make_cluster):
    cluster = make_cluster(nodes=3)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(stateful())
    cluster.wait_ready(deployment, timeout=120)

    assert [p.name for p in cluster.pods(deployment)] == ["db-0", "db-1", "db-2"]
    created = {e.name: e.ts for e in recorder.of("pod_created")}
    ready = {e.name: e.ts for e in recorder.of("pod_ready")}
    # OrderedReady: ordinal k is created only once k-1 is Running and Ready.
    assert ready["db-0"] <= created["db-1"] and ready["db-1"] <= created["db-2"]


def test_parallel_creates_every_ordinal_at_once(make_cluster):
    cluster = make_cluster(nodes=3)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(stateful(pod_management_policy="Parallel", app={"startupSeconds": 1.0}))
    cluster.wait_ready(deployment, timeout=120)
    created = {e.name: e.ts for e in recorder.of("pod_created")}
    ready = {e.name: e.ts for e in recorder.of("pod_ready")}
    assert max(created.values()) < min(ready.values())


def test_a_deleted_pod_comes_back_with_its_name_and_its_claim(make_cluster, rng):
    cluster = make_cluster(nodes=3)
    deployment = cluster.deploy(stateful(volume={"type": "volumeClaimTemplate"}))
    cluster.wait_ready(deployment, timeout=120)
    url = ordinal(cluster, deployment, 1)
    poll_until(lambda: identity(url).get("pod") == "db-1", 60, "db-1 answers on its ordinal address")
    before = identity(url)
    assert request(url, "PUT", "/kv/k1", "v1")[0] == 200

    cluster.inject(deployment, PodDeleteFault(action="pod-delete", at=0, target=TargetSpec(name="db-1")), "f1", rng)

    after = poll_until(lambda: (i := identity(url)).get("starts") == 2 and i, 90, "db-1 back on the same address")
    assert after["pod"] == "db-1" and after["volume"] == before["volume"]
    status, headers, body = request(url, "GET", "/kv/k1")
    assert (status, body.get("value"), headers["volume"]) == (200, "v1", before["volume"])
    claims = sorted(p.name for p in (cluster.workdir / "volumes" / "claims").iterdir())
    assert claims == ["data-db-0", "data-db-1", "data-db-2"]

    cluster.teardown(deployment)
    assert not list((cluster.workdir / "volumes" / "claims").iterdir()), "teardown removes the claims"


def test_an_empty_dir_is_emptied_with_its_pod_but_kept_across_container_restarts(make_cluster, rng):
    cluster = make_cluster(nodes=2)
    deployment = cluster.deploy(stateful(replicas=1, volume={"type": "emptyDir"}))
    cluster.wait_ready(deployment, timeout=120)
    url = ordinal(cluster, deployment, 0)
    poll_until(lambda: identity(url).get("pod") == "db-0", 60, "db-0 answers")
    first = identity(url)
    assert request(url, "PUT", "/kv/k1", "v1")[0] == 200

    cluster.inject(deployment, ContainerKillFault(action="container-kill", at=0), "f1", rng)
    restarted = poll_until(lambda: (i := identity(url)).get("starts") == 2 and i, 90, "the container restarted in place")
    assert restarted["volume"] == first["volume"]
    assert request(url, "GET", "/kv/k1")[0] == 200, "an emptyDir survives a container crash"

    cluster.inject(deployment, PodDeleteFault(action="pod-delete", at=0, target=TargetSpec(name="db-0")), "f2", rng)
    fresh = poll_until(lambda: (i := identity(url)).get("volume") not in (None, first["volume"]) and i, 90, "db-0 back")
    assert fresh["pod"] == "db-0" and fresh["starts"] == 1
    assert request(url, "GET", "/kv/k1")[0] == 404, "a new pod gets a new, empty emptyDir"
    assert len(list((cluster.workdir / "volumes" / "pods").iterdir())) == 1, "the old emptyDir is gone"


def test_a_pod_on_a_crashed_node_stays_terminating_until_force_deleted(make_cluster, rng):
    cluster = make_cluster(nodes=3)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(stateful(toleration_seconds=1, volume={"type": "volumeClaimTemplate"}))
    cluster.wait_ready(deployment, timeout=120)
    node = next(p.node for p in cluster.pods(deployment) if p.name == "db-1")

    cluster.inject(deployment, NodeCrashFault(action="node-crash", at=0, target=TargetSpec(name=node)), "f1", rng)
    poll_until(lambda: recorder.of("pod_evicted", "db-1"), 90, "db-1 evicted by the taint manager")
    evicted = recorder.of("pod_evicted", "db-1")[0].ts
    # The identity stays taken: over the next 2 s (100 control-plane ticks, where a
    # Deployment replaces within one), db-1 is the one Terminating pod on the dead node.
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        db1 = [p for p in cluster.pods(deployment) if p.name == "db-1"]
        assert [(p.phase, p.node) for p in db1] == [("Terminating", node)]
        time.sleep(0.05)
    assert [e for e in recorder.of("pod_created", "db-1") if e.ts > evicted] == []
    assert len(cluster.pods(deployment)) == 3

    # A count picks the pod stuck Terminating: kubectl delete --force --grace-period=0.
    force = PodDeleteFault(action="pod-delete", at=0, force=True, target=TargetSpec(count=1))
    assert cluster.inject(deployment, force, "f2", rng).targets == ("db-1",)
    cluster.wait_ready(deployment, timeout=120)
    pod = next(p for p in cluster.pods(deployment) if p.name == "db-1")
    assert pod.node != node and pod.phase == "Running"
    assert len(recorder.of("pod_created", "db-1")) == 2


def test_a_deployment_replaces_a_pod_of_a_crashed_node_after_the_toleration(make_cluster, rng):
    cluster = make_cluster(nodes=3)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(workload(replicas=3, toleration_seconds=1))
    cluster.wait_ready(deployment, timeout=120)
    before = {p.name: p.node for p in cluster.pods(deployment)}
    lost = next(name for name, node in before.items() if node == "node-2")

    cluster.inject(deployment, NodeCrashFault(action="node-crash", at=0, target=TargetSpec(name="node-2")), "f1", rng)
    poll_until(lambda: recorder.of("pod_evicted", lost), 90, "evicted")
    poll_until(lambda: len([p for p in cluster.pods(deployment) if p.ready]) == 3, 90, "replaced while it is Terminating")
    assert any(p.name == lost and p.phase == "Terminating" for p in cluster.pods(deployment))


def test_scale_down_removes_the_highest_ordinal_first(make_cluster, rng):
    cluster = make_cluster(nodes=3)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(stateful())
    cluster.wait_ready(deployment, timeout=120)

    cluster.inject(deployment, ScaleFault(action="scale", at=0, replicas=1), "f1", rng)
    poll_until(lambda: [p.name for p in cluster.pods(deployment)] == ["db-0"], 90, "scaled to db-0 only")
    deleted = [e.name for e in recorder.of("pod_terminating")]
    assert deleted == ["db-2", "db-1"]
    # OrderedReady: db-1 starts terminating only once db-2 is completely gone.
    assert recorder.of("pod_deleted", "db-2")[0].ts <= recorder.of("pod_terminating", "db-1")[0].ts
