"""Deploy, readiness and the load target on the kubernetes backend (fake API)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaoslab.cluster.base import Cluster, EventKind
from chaoslab.cluster.kube.cluster import APP_SOURCE_PATH
from chaoslab.errors import ClusterError, UsageError
from tests.kubernetes.conftest import EventLog, workload
from tests.kubernetes.fake import FakeKubeApi


def test_the_backend_implements_the_cluster_protocol(make_cluster) -> None:
    assert isinstance(make_cluster(), Cluster)


def test_deploy_creates_a_labelled_namespace_and_the_workload_objects(make_cluster, api: FakeKubeApi) -> None:
    cluster = make_cluster()
    spec = workload(
        replicas=3,
        livenessProbe={"httpGet": {"path": "/healthz"}, "failureThreshold": 5},
        tolerationSeconds=10,
        terminationGracePeriodSeconds=7,
        app={"latencyMs": 5, "startupSeconds": 1.5, "errorRate": "1%"},
        env=[{"name": "EXTRA", "value": "1"}],
        podDisruptionBudget={"minAvailable": 2},
    )
    deployment = cluster.deploy(spec)

    assert deployment.namespace == "chaoslab-web-a1b2c3"
    assert deployment.replicas == 3
    create = [c for c in api.calls if c[0] == "create_namespace"]
    assert create == [("create_namespace", "chaoslab-web-a1b2c3", {"app.kubernetes.io/managed-by": "chaoslab", "app.kubernetes.io/part-of": "chaoslab"})]
    created = [(c[2], c[3]) for c in api.calls if c[0] == "create_object"]
    assert created == [("ConfigMap", "web-app"), ("Deployment", "web"), ("Service", "web"), ("PodDisruptionBudget", "web")]

    body = api.get("Deployment", deployment.namespace, "web")
    labels = body["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "web"
    assert labels["app.kubernetes.io/managed-by"] == "chaoslab"
    assert body["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web"}
    pod = body["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 7
    assert {(t["key"], t["effect"], t["tolerationSeconds"]) for t in pod["tolerations"]} == {
        ("node.kubernetes.io/not-ready", "NoExecute", 10),
        ("node.kubernetes.io/unreachable", "NoExecute", 10),
    }
    (container,) = pod["containers"]
    assert container["image"] == "python:3.12-slim"
    assert container["command"] == ["python", "/app/app.py"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8080}
    assert container["readinessProbe"]["periodSeconds"] == 1
    assert container["readinessProbe"]["failureThreshold"] == 3  # Kubernetes default kept
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert container["livenessProbe"]["failureThreshold"] == 5
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["HOST"] == "0.0.0.0" and env["PORT"] == "8080"
    assert env["CHAOSLAB_LATENCY_MS"] == "5" and env["CHAOSLAB_STARTUP_SECONDS"] == "1.5"
    assert env["CHAOSLAB_ERROR_RATE"] == "0.01" and env["EXTRA"] == "1"
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert container["volumeMounts"][0]["mountPath"] == "/app"
    assert pod["volumes"][0]["configMap"]["name"] == "web-app"
    assert pod["shareProcessNamespace"] is True

    config_map = api.get("ConfigMap", deployment.namespace, "web-app")
    assert config_map["data"]["app.py"] == "print('app')\n"
    pdb = api.get("PodDisruptionBudget", deployment.namespace, "web")
    assert pdb["spec"] == {"selector": {"matchLabels": body["spec"]["selector"]["matchLabels"]}, "minAvailable": 2}
    service = api.get("Service", deployment.namespace, "web")
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["selector"] == body["spec"]["selector"]["matchLabels"]


def test_the_built_in_app_is_the_simulators_file(make_cluster, api: FakeKubeApi) -> None:
    cluster = make_cluster(app_source=None)
    deployment = cluster.deploy(workload(replicas=1))
    config_map = api.get("ConfigMap", deployment.namespace, "web-app")
    assert config_map["data"]["app.py"] == APP_SOURCE_PATH.read_text()
    assert "CHAOSLAB_LATENCY_MS" in config_map["data"]["app.py"]


def test_another_image_runs_as_given_without_the_app(make_cluster, api: FakeKubeApi) -> None:
    cluster = make_cluster()
    deployment = cluster.deploy(workload(image="nginx:1.27", port=80, toleration_seconds=None))
    created = [c[2] for c in api.calls if c[0] == "create_object"]
    assert created == ["Deployment", "Service"]
    pod = api.get("Deployment", deployment.namespace, "web")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "nginx:1.27" and "command" not in container and "env" not in container
    # tolerationSeconds null: tolerate a lost node forever.
    assert all("tolerationSeconds" not in t for t in pod["tolerations"])


def test_wait_ready_returns_once_every_replica_is_an_endpoint_and_events_tell_it(make_cluster) -> None:
    cluster = make_cluster()
    deployment = cluster.deploy(workload(replicas=3))
    cluster.wait_ready(deployment, timeout=10)
    log = EventLog(cluster)
    pods = cluster.pods(deployment)
    assert len(pods) == 3 and all(p.ready and p.phase == "Running" for p in pods)
    # The pod and EndpointSlice watches are independent streams (as on a real API
    # server): one may be behind the other, so wait until each has told its part.
    log.wait_for(
        lambda _: len(log.of(EventKind.ENDPOINT_ADDED)) == 3 and all(log.of(EventKind.POD_READY, p.name) for p in pods),
        "3 endpoints and 3 pods ready",
    )
    for pod in pods:
        # Each watch keeps its own order; the pod and EndpointSlice watches interleave.
        kinds = [e.kind for e in log.events if e.name == pod.name and e.object == "pod"]
        assert kinds == [EventKind.POD_CREATED, EventKind.POD_SCHEDULED, EventKind.CONTAINER_STARTED, EventKind.POD_READY]
        assert [e.node for e in log.of(EventKind.ENDPOINT_ADDED, pod.name)] == [pod.node]
        created = log.of(EventKind.POD_CREATED, pod.name)[0]
        assert created.reason == "ReplicaSet"
    # Pods prefer workers; the control-plane node of minikube hosts none here.
    assert {p.node for p in pods} <= {"minikube-m02", "minikube-m03"}
    assert all(p.endpoint and p.endpoint.endswith(":8080") for p in pods)


def test_wait_ready_explains_why_pods_are_not_ready(make_cluster, api: FakeKubeApi) -> None:
    for node in ("minikube", "minikube-m02", "minikube-m03"):
        api.set_node_unschedulable(node, True)
    cluster = make_cluster()
    deployment = cluster.deploy(workload(replicas=2))
    with pytest.raises(ClusterError) as caught:
        cluster.wait_ready(deployment, timeout=0.3)
    text = str(caught.value)
    assert "did not become ready within 0.3s (0/2 ready)" in text
    assert "PodScheduled=False Unschedulable: 0/3 nodes are available" in text
    assert "readyTimeout" in text


def test_service_url_uses_the_node_port_on_the_control_plane_node(make_cluster) -> None:
    cluster = make_cluster()
    deployment = cluster.deploy(workload(replicas=1))
    # The control plane is never faulted, so the load's entry point survives node faults.
    assert cluster.service_url(deployment) == "http://192.168.49.2:30080"


def test_service_url_explicit_target(make_cluster) -> None:
    cluster = make_cluster({"target": "http://127.0.0.1:8080/"})
    deployment = cluster.deploy(workload(replicas=1))
    assert cluster.service_url(deployment) == "http://127.0.0.1:8080"


def test_a_target_that_is_neither_service_nor_url_is_refused(make_cluster) -> None:
    with pytest.raises(UsageError, match="cluster.kubernetes.target"):
        make_cluster({"target": "ingress"})


MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop, labels: {team: a}}
spec:
  replicas: 5
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop, tier: web}}
    spec:
      containers:
        - name: web
          image: ghcr.io/example/shop:1
          ports: [{containerPort: 9000}]
---
apiVersion: v1
kind: Service
metadata: {name: shop-lb}
spec:
  type: LoadBalancer
  selector: {app: shop}
  ports: [{port: 80, targetPort: 9000}]
status:
  loadBalancer:
    ingress: [{ip: 203.0.113.7}]
"""


def test_user_manifests_are_deployed_labelled_and_found_again(make_cluster, api: FakeKubeApi, tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(MANIFEST)
    cluster = make_cluster(base_dir=tmp_path)
    deployment = cluster.deploy(workload(name="shop", replicas=2, manifests=["shop.yaml"]))
    assert (deployment.name, deployment.replicas) == ("shop", 2)
    body = api.get("Deployment", deployment.namespace, "shop")
    assert body["spec"]["replicas"] == 2  # workload.replicas wins, so sweeps work
    assert body["metadata"]["labels"] == {"team": "a", "app.kubernetes.io/managed-by": "chaoslab"}
    cluster.wait_ready(deployment, timeout=10)
    assert len(cluster.pods(deployment)) == 2
    assert cluster.service_url(deployment) == "http://203.0.113.7:80"


def test_a_manifest_for_another_namespace_is_refused(make_cluster, tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST.replace("metadata: {name: shop, labels: {team: a}}", "metadata: {name: shop, namespace: prod}"))
    cluster = make_cluster(base_dir=tmp_path)
    with pytest.raises(UsageError, match="sets namespace 'prod'"):
        cluster.deploy(workload(name="shop", manifests=["m.yaml"]))
