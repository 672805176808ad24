"""Pod faults and scaling: what the ReplicaSet and the kubelet do about them."""

from __future__ import annotations

import random

from chaoslab.spec import ContainerKillFault, PodDeleteFault, ScaleFault, TargetSpec

from tests.sim.helpers import FAST_TIMINGS, EventRecorder, get, poll_until, workload


def test_pod_delete_replacement_is_ready_after_start_plus_readiness(make_cluster, rng):
    cluster = make_cluster(nodes=3)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(workload(replicas=3, app={"startupSeconds": 0.5}))
    cluster.wait_ready(deployment, timeout=30)
    before = {p.name for p in cluster.pods(deployment)}

    injection = cluster.inject(deployment, PodDeleteFault(action="pod-delete", at=0), "f1", rng)

    (victim,) = injection.targets
    assert victim in before
    assert (injection.ready_before, injection.ready_after) == (3, 2)
    cluster.wait_ready(deployment, timeout=30)
    (replacement,) = {p.name for p in cluster.pods(deployment)} - before
    created = recorder.of("pod_created", replacement)[0].ts
    terminating = recorder.of("pod_terminating", victim)[0].ts
    ready = recorder.of("pod_ready", replacement)[0].ts
    # The ReplicaSet replaces at once, not after the 2 s grace period.
    assert created - terminating < 1.0
    # start delay (0.3 s) + app start-up (0.5 s) + readiness probe period (1 s), with slack.
    expected = FAST_TIMINGS.pod_start_delay + 0.5
    assert expected <= ready - created < expected + 1.0 + 2.0
    assert recorder.of("endpoint_removed", victim)
    assert recorder.of("pod_deleted", victim)
    assert victim not in {p.name for p in cluster.pods(deployment)}


def test_forced_delete_kills_at_once_and_clients_see_the_survivors(make_cluster, rng):
    cluster = make_cluster(nodes=2)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(workload(replicas=2, termination_grace_period_seconds=30))
    cluster.wait_ready(deployment, timeout=30)

    fault = PodDeleteFault(action="pod-delete", at=0, force=True, grace_period_seconds=0)
    (victim,) = cluster.inject(deployment, fault, "f1", rng).targets

    deleted = recorder.of("pod_deleted", victim)
    assert deleted, "a forced delete removes the pod object at once"
    poll_until(lambda: recorder.of("endpoint_removed", victim), 5, "endpoint of the deleted pod removed")
    answers = {get(cluster.service_url(deployment), network=cluster.client_network()) for _ in range(10)}
    assert f"ok:{victim}" not in answers and all(a.startswith("ok:") for a in answers)


def test_repeated_container_kill_grows_restart_count_and_back_off(make_cluster, rng):
    cluster = make_cluster(nodes=1)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(workload(replicas=1))
    cluster.wait_ready(deployment, timeout=30)
    (pod,) = cluster.pods(deployment)
    fault = ContainerKillFault(action="container-kill", at=0, target=TargetSpec(name=pod.name))

    for kill in range(1, 5):
        cluster.inject(deployment, fault, f"f1.{kill}", rng)
        poll_until(
            lambda: cluster.pods(deployment)[0].restart_count == kill,
            15,
            f"restart {kill} of {pod.name}",
        )
        poll_until(lambda: cluster.pods(deployment)[0].ready, 15, "pod ready again")

    (same,) = cluster.pods(deployment)
    assert same.name == pod.name and same.restart_count == 4  # restarted in place
    waits = [float(e.detail.split()[0].removeprefix("backoff=")) for e in recorder.of("back_off", pod.name)]
    # Upstream: the first restart is immediate, then back_off_initial, doubling.
    initial = FAST_TIMINGS.back_off_initial
    assert waits == [initial, 2 * initial, 4 * initial]
    died = recorder.of("container_died", pod.name)
    restarted = recorder.of("container_restarted", pod.name)
    assert [e.detail for e in restarted] == [f"restartCount={n}" for n in range(1, 5)]
    gaps = [r.ts - d.ts for d, r in zip(died, restarted)]
    assert gaps[0] < initial
    for gap, wait in zip(gaps[1:], waits):
        assert gap >= wait - 0.05


def test_scale_up_then_down_keeps_the_service_answering(make_cluster, rng):
    cluster = make_cluster(nodes=3)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(workload(replicas=2))
    cluster.wait_ready(deployment, timeout=30)

    up = cluster.inject(deployment, ScaleFault(action="scale", at=0, replicas=5), "f1", rng)
    assert up.targets == ("web",) and not up.restorable
    cluster.wait_ready(deployment, timeout=30)
    assert len(cluster.endpoints(deployment)) == 5
    assert len({p.node for p in cluster.pods(deployment)}) == 3
    assert [e.detail for e in recorder.of("scaled")] == ["replicas=2", "replicas=5"]

    created = {e.name: e.ts for e in recorder.of("pod_created")}
    layout = {p.name: p.node for p in cluster.pods(deployment)}
    cluster.inject(deployment, ScaleFault(action="scale", at=0, replicas=3), "f2", rng)
    cluster.wait_ready(deployment, timeout=30)
    poll_until(lambda: len(cluster.pods(deployment)) == 3, 15, "scaled-down pods deleted")
    survivors = {p.name for p in cluster.pods(deployment)}
    # Upstream ranking: pods doubled up on a node go first, and of those the newer one.
    assert sorted(layout[name] for name in survivors) == ["node-1", "node-2", "node-3"]
    for node in ("node-1", "node-2", "node-3"):
        on_node = sorted((name for name in layout if layout[name] == node), key=created.get)
        assert on_node[0] in survivors
    victims = set(layout) - survivors
    assert {e.name for e in recorder.of("pod_terminating") if e.reason == "ReplicaSet"} == victims
    answers = {get(cluster.service_url(deployment), network=cluster.client_network()) for _ in range(30)}
    assert answers == {f"ok:{name}" for name in survivors}


def test_failing_liveness_probe_restarts_the_container_in_place(make_cluster):
    cluster = make_cluster(nodes=1)
    recorder = EventRecorder(cluster)
    never_ready = {"httpGet": {"path": "/readyz"}, "periodSeconds": 1, "failureThreshold": 2}
    deployment = cluster.deploy(
        workload(replicas=1, liveness_probe=never_ready, app={"readinessDelaySeconds": 600})
    )
    poll_until(lambda: recorder.of("container_restarted"), 15, "liveness restart")
    (died, *_) = recorder.of("container_died")
    assert died.reason == "LivenessProbe"
    started = recorder.of("container_started")[0]
    assert died.ts - started.ts >= 1.0  # two failed probes, one period apart
    (pod,) = cluster.pods(deployment)
    assert pod.restart_count >= 1 and pod.name == died.name


def test_same_seed_gives_same_pod_names_and_targets(make_cluster):
    picks = []
    for _ in range(2):
        cluster = make_cluster(nodes=2, seed=42)
        deployment = cluster.deploy(workload(replicas=4))
        cluster.wait_ready(deployment, timeout=30)
        names = [p.name for p in cluster.pods(deployment)]
        fault = PodDeleteFault(action="pod-delete", at=0, target=TargetSpec(percent=0.5))
        injection = cluster.inject(deployment, fault, "f1", random.Random(5))
        picks.append((names, injection.targets))
        cluster.close()
    assert picks[0] == picks[1]
    assert len(picks[0][1]) == 2
