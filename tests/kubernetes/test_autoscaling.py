"""The HorizontalPodAutoscaler on the kubernetes backend: created beside the workload
(autoscaling/v2, as the spec says it), removed at teardown, and refused before anything
is deployed, dry run included, when the cluster serves no resource metrics API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaoslab.cluster.kube import describe_targets
from chaoslab.cluster.kube.client import connect
from chaoslab.cluster.kube.manifests import autoscaler_body, generated_objects, with_autoscaler
from chaoslab.errors import EXIT_ENVIRONMENT, ClusterError
from chaoslab.spec import Experiment
from tests.kubernetes.conftest import workload
from tests.kubernetes.fake import FakeKubeApi, RecordingProvider
from tests.kubernetes.test_client import ApiServer, kubeconfig, server, spec  # noqa: F401 - fixture

AUTOSCALING = {
    "minReplicas": 2,
    "maxReplicas": 6,
    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}],
}


def autoscaled(**fields: object):
    return workload(**{"resources": {"requests": {"cpu": "100m"}}, "autoscaling": AUTOSCALING, **fields})


def test_deploy_creates_the_hpa_after_the_deployment_and_teardown_removes_it(make_cluster, api: FakeKubeApi) -> None:
    cluster = make_cluster({"namespace": "shared"})
    api.create_namespace("shared", {})
    deployment = cluster.deploy(autoscaled(replicas=2))
    created = [(c[2], c[3]) for c in api.calls if c[0] == "create_object"]
    assert created == [("ConfigMap", "web-app"), ("Deployment", "web"), ("Service", "web"), ("HorizontalPodAutoscaler", "web")]
    hpa = api.get("HorizontalPodAutoscaler", deployment.namespace, "web")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 2,
        "maxReplicas": 6,
        "metrics": AUTOSCALING["metrics"],
    }  # no behavior: the API server's defaults apply, as for a kubectl-applied HPA
    container = api.get("Deployment", deployment.namespace, "web")["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["cpu"] == "100m"
    cluster.teardown(deployment)
    assert ("delete_object", "shared", "HorizontalPodAutoscaler", "web") in api.calls


def test_behavior_is_sent_as_written() -> None:
    spec_ = autoscaled(
        autoscaling={
            **AUTOSCALING,
            "behavior": {
                "scaleDown": {"stabilizationWindowSeconds": 60, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}]},
                "scaleUp": {"selectPolicy": "Min"},
            },
        }
    )
    body = autoscaler_body(spec_, "web", {})
    assert body["spec"]["behavior"] == {
        "scaleUp": {"selectPolicy": "Min"},
        "scaleDown": {"stabilizationWindowSeconds": 60, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}]},
    }


def test_without_a_metrics_api_nothing_is_deployed_and_metrics_server_is_named(make_cluster, api: FakeKubeApi) -> None:
    api.resource_metrics = False
    cluster = make_cluster()
    with pytest.raises(ClusterError) as caught:
        cluster.deploy(autoscaled())
    assert caught.value.exit_code == EXIT_ENVIRONMENT == 3
    message = str(caught.value)
    assert "metrics.k8s.io" in message and "metrics-server" in message
    assert "minikube addons enable metrics-server" in message and "Nothing was deployed" in message
    assert not [c for c in api.calls if c[0] in ("create_namespace", "create_object")]


def test_the_dry_run_refuses_too_and_otherwise_names_the_hpa() -> None:
    experiment = Experiment.model_validate(
        {
            "name": "web-autoscale",
            "cluster": {"backend": "kubernetes"},
            "workload": {"name": "web", "replicas": 1, "resources": {"requests": {"cpu": "100m"}}, "autoscaling": AUTOSCALING},
        }
    )
    api = FakeKubeApi()
    text = describe_targets(experiment, api=api, node_provider=RecordingProvider())
    assert "autoscaling: HorizontalPodAutoscaler (autoscaling/v2) 2-6 replicas at 60% CPU" in text
    assert api.calls == []
    api.resource_metrics = False
    with pytest.raises(ClusterError, match="minikube addons enable metrics-server") as caught:
        describe_targets(experiment, api=api, node_provider=RecordingProvider())
    assert caught.value.exit_code == 3


@pytest.mark.parametrize("status, served", [(200, True), (404, False), (503, False)])
def test_the_client_asks_the_discovery_endpoint(server, tmp_path: Path, status: int, served: bool) -> None:  # noqa: F811
    ApiServer.metrics_status = status
    api = connect(spec(kubeconfig(tmp_path, server.server_address[1])), environ={})
    try:
        assert api.has_resource_metrics() is served
    finally:
        api.close()
    assert any(path == "/apis/metrics.k8s.io/v1beta1" for _, path, _, _ in ApiServer.requests)


def test_the_hpa_body_reaches_the_server_exactly_as_built(server, tmp_path: Path) -> None:  # noqa: F811
    objects = with_autoscaler(generated_objects(autoscaled(), python_image="python:3.12-slim", app_source=""), autoscaled())
    body = objects.objects[-1]
    assert body["kind"] == "HorizontalPodAutoscaler"
    api = connect(spec(kubeconfig(tmp_path, server.server_address[1])), environ={})
    try:
        api.create_object("ns", body)
    finally:
        api.close()
    method, path, _, sent = ApiServer.requests[-1]
    assert (method, path) == ("POST", "/apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers")
    assert json.loads(sent) == json.loads(json.dumps(body))


def test_the_real_hpas_rescale_event_becomes_hpa_scaled() -> None:
    from chaoslab.cluster.base import EventKind
    from chaoslab.cluster.kube.records import EventRecord
    from chaoslab.cluster.kube.watches import Causes, EventTracker

    tracker = EventTracker(Causes())
    record = EventRecord(
        name="web.1", namespace="ns", reason="SuccessfulRescale", object_kind="HorizontalPodAutoscaler", object_name="web",
        message="New size: 3; reason: cpu resource utilization (percentage of request) above target", ts=1000.0,
    )
    (event,) = tracker.changes(None, record, observed=1000.0)
    assert (event.kind, event.object, event.name, event.ts) == (EventKind.HPA_SCALED, "hpa", "web", 1000.0)
    assert event.detail.startswith("replicas=3 message=New size: 3; reason: cpu resource utilization")
    other = EventRecord(name="web.2", namespace="ns", reason="FailedGetResourceMetric", object_kind="HorizontalPodAutoscaler", object_name="web")
    assert tracker.changes(None, other, observed=1001.0) == []
