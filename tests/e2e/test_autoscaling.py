"""The HorizontalPodAutoscaler on the real control plane (which serves no metrics API).

The local cluster has no metrics-server, as a fresh minikube has none: deploying an
autoscaled workload is refused before anything exists, naming metrics-server. The HPA
object itself is created through our wrapper beside a plain workload and read back with
the official client: the API server accepts our autoscaling/v2 body, fills in the same
behaviour defaults chaoslab's model assumes, and the real HPA controller reports that it
cannot get the CPU metric. The watch the backend samples autoscaler.csv with sees that
evaluation: the replicas it found, no utilisation, and why nothing was decided.
"""

from __future__ import annotations

import time

import pytest
from kubernetes import client as k8s

from chaoslab.cluster.kube.manifests import autoscaler_body, standard_labels
from chaoslab.cluster.kube.watches import AutoscalerTracker, EventSink, ResourceWatcher, SampleSink
from chaoslab.errors import ClusterError
from chaoslab.spec import DEFAULT_SCALE_DOWN_POLICIES, DEFAULT_SCALE_UP_POLICIES
from tests.e2e.conftest import EVENT_DEADLINE_SECONDS, MANAGED_BY_SELECTOR, workload

pytestmark = pytest.mark.e2e

AUTOSCALING = {"minReplicas": 1, "maxReplicas": 4}
REQUESTS = {"requests": {"cpu": "100m"}}


def test_an_autoscaled_workload_is_refused_before_anything_is_deployed(open_kube, core: k8s.CoreV1Api) -> None:
    before = {ns.metadata.name for ns in core.list_namespace(label_selector=MANAGED_BY_SELECTOR).items}
    cluster = open_kube()
    with pytest.raises(ClusterError) as caught:
        cluster.deploy(workload(replicas=1, resources=REQUESTS, autoscaling=AUTOSCALING))
    message = str(caught.value)
    assert caught.value.exit_code == 3
    assert "metrics.k8s.io" in message and "minikube addons enable metrics-server" in message
    after = {ns.metadata.name for ns in core.list_namespace(label_selector=MANAGED_BY_SELECTOR).items}
    assert after == before, "no namespace was created"


def test_the_hpa_body_is_accepted_defaulted_as_assumed_and_seen_by_the_controller(open_kube, kube: k8s.ApiClient) -> None:
    cluster = open_kube()
    spec = workload(replicas=1, resources=REQUESTS, autoscaling=AUTOSCALING)
    plain = spec.model_copy(update={"autoscaling": None})
    deployment = cluster.deploy(plain)
    # What KubernetesCluster watches when it creates the HPA itself (with autoscaling).
    samples = SampleSink()
    tracker = AutoscalerTracker(deployment.name, 80, samples)
    watcher = ResourceWatcher(cluster.api, "horizontalpodautoscalers", deployment.namespace, tracker, EventSink(), timeout_seconds=10)  # type: ignore[attr-defined]
    watcher.relist()
    watcher.start()
    try:
        body = autoscaler_body(spec, deployment.name, standard_labels(spec.name))
        # Empty rules: the API server fills in its defaults (it leaves an absent behavior absent).
        body["spec"]["behavior"] = {"scaleUp": {}, "scaleDown": {}}
        cluster.api.create_object(deployment.namespace, body)  # type: ignore[attr-defined]
        autoscaling = k8s.AutoscalingV2Api(kube)
        stored = autoscaling.read_namespaced_horizontal_pod_autoscaler(deployment.name, deployment.namespace)
        assert stored.spec.scale_target_ref.name == deployment.name
        assert (stored.spec.min_replicas, stored.spec.max_replicas) == (1, 4)
        assert stored.spec.metrics[0].resource.target.average_utilization == 80  # the v2 default we send
        up, down = stored.spec.behavior.scale_up, stored.spec.behavior.scale_down
        assert up.stabilization_window_seconds == 0 and up.select_policy == "Max"
        assert {(p.type, p.value, p.period_seconds) for p in up.policies} == {
            (p.type, p.value, p.period_seconds) for p in DEFAULT_SCALE_UP_POLICIES
        }
        assert down.select_policy == "Max" and down.stabilization_window_seconds is None  # the controller flag's
        assert [(p.type, p.value, p.period_seconds) for p in down.policies] == [
            (p.type, p.value, p.period_seconds) for p in DEFAULT_SCALE_DOWN_POLICIES
        ]
        # The real controller evaluates it and says why it cannot scale: no CPU metric.
        deadline = time.monotonic() + EVENT_DEADLINE_SECONDS
        reasons: set[str] = set()
        while time.monotonic() < deadline:
            status = autoscaling.read_namespaced_horizontal_pod_autoscaler_status(deployment.name, deployment.namespace).status
            reasons = {c.reason for c in status.conditions or [] if c.type == "ScalingActive" and c.status == "False"}
            if reasons:
                break
            time.sleep(1.0)
        assert reasons and reasons <= {"FailedGetResourceMetric", "InvalidSelector"}, reasons
        # That evaluation, as autoscaler.csv gets it: the Deployment's 1 replica found and
        # kept (nothing decided), no utilisation, the target from the HPA's spec.
        found: list = []
        while time.monotonic() < deadline and not any(sample.reason in reasons for sample in found):
            found += samples.drain()
            time.sleep(0.5)
        assert any(sample.reason in reasons for sample in found), f"seen: {found} (watch failure: {watcher.failure})"
        assert {(s.name, s.current, s.desired, s.utilization, s.target, s.recommendation) for s in found} == {(deployment.name, 1, 1, None, 80, None)}
    finally:
        watcher.stop()
        cluster.teardown(deployment)
