"""Our wrapper over the real `kubernetes` client, against a local HTTP server that answers
like an API server (JSON bodies, metav1.Status errors, chunked watch streams).

This is the one place the real client runs in these tests: it proves that connection
problems, HTTP errors and 410 Gone become our errors with the API's message kept.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from chaoslab.cluster.kube.client import connect
from chaoslab.cluster.kube.records import EvictionBlocked, NotFound, WatchExpired
from chaoslab.errors import EXIT_ENVIRONMENT, ClusterError
from chaoslab.spec import KubernetesClusterSpec
from tests.kubernetes.test_watches import pod_json

FORBIDDEN = {
    "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
    "message": 'nodes is forbidden: User "dev" cannot list resource "nodes" in API group "" at the cluster scope',
}
PDB_REFUSAL = {
    "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "TooManyRequests", "code": 429,
    "message": "Cannot evict pod as it would violate the pod's disruption budget.",
}
UNAUTHORIZED = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Unauthorized", "code": 401, "message": "Unauthorized"}
NOT_FOUND = {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404, "message": 'namespaces "gone" not found'}
EXPIRED = {"type": "ERROR", "object": {"kind": "Status", "status": "Failure", "reason": "Expired", "code": 410, "message": "too old resource version: 500 (900)"}}


def hpa_json(resource_version: str = "700") -> dict[str, Any]:
    """An autoscaling/v2 HPA as `kubectl get hpa web -o json` prints it, just after a scale-up 2 -> 4."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "ns", "resourceVersion": resource_version, "creationTimestamp": "2026-11-27T11:00:00Z"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 6,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}],
        },
        "status": {
            "currentReplicas": 2,
            "desiredReplicas": 4,
            "lastScaleTime": "2026-11-27T11:15:00Z",
            "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageValue": "121m", "averageUtilization": 121}}}],
            "conditions": [
                {"type": "AbleToScale", "status": "True", "lastTransitionTime": "2026-11-27T11:15:00Z", "reason": "SucceededRescale",
                 "message": "the HPA controller was able to update the target scale to 4"},
                {"type": "ScalingActive", "status": "True", "lastTransitionTime": "2026-11-27T11:01:00Z", "reason": "ValidMetricFound",
                 "message": "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"},
                {"type": "ScalingLimited", "status": "False", "lastTransitionTime": "2026-11-27T11:01:00Z", "reason": "DesiredWithinRange",
                 "message": "the desired count is within the acceptable range"},
            ],
        },
    }


class ApiServer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests: list[tuple[str, str, str, bytes]] = []
    release = threading.Event()
    # How /apis/metrics.k8s.io/v1beta1 answers: 200 (metrics-server), 404 (none), 503 (unavailable).
    metrics_status = 404

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            return  # the client hung up first (a watch closed from our side): expected

    def _send(self, code: int, body: Any, *, body_delay: float = 0.0) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body_delay:
            self.wfile.flush()
            time.sleep(body_delay)
        self.wfile.write(data)

    def _chunk(self, body: Any) -> None:
        line = json.dumps(body).encode() + b"\n"
        self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
        self.wfile.flush()

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.requests.append((self.command, self.path, self.headers.get("Content-Type", ""), body))

    def do_GET(self) -> None:
        self._record()
        path = self.path
        if path.startswith("/version"):
            # The body comes a moment after the headers, as over a slow link: a client
            # that pools the connection without reading the body sees it as the next
            # answer's status line (the flake this once was, made certain).
            self._send(200, {"major": "1", "minor": "34", "gitVersion": "v1.34.1"}, body_delay=0.05)
        elif path.startswith("/apis/metrics.k8s.io/v1beta1"):
            status = self.metrics_status
            body = {"kind": "APIResourceList", "groupVersion": "metrics.k8s.io/v1beta1", "resources": [{"name": "pods"}]}
            self._send(status, body if status == 200 else {"kind": "Status", "code": status, "message": "the server is currently unable to handle the request"})
        elif path.startswith("/api/v1/nodes"):
            self._send(403, FORBIDDEN)
        elif path.startswith("/api/v1/namespaces/locked"):
            self._send(401, UNAUTHORIZED)
        elif path.startswith("/api/v1/namespaces/gone"):
            self._send(404, NOT_FOUND)
        elif path.startswith("/api/v1/namespaces/ns/pods") and "watch=true" in path:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if "resourceVersion=500" in path:
                modified = pod_json()
                modified["metadata"]["resourceVersion"] = "501"
                self._chunk({"type": "MODIFIED", "object": modified})
                self._chunk({"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "650"}}})
                self._chunk(EXPIRED)
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.release.wait(30)  # a quiet watch: nothing happens until the client leaves
        elif path.startswith("/api/v1/namespaces/ns/pods"):
            self._send(200, {"kind": "PodList", "metadata": {"resourceVersion": "500"}, "items": [pod_json()]})
        elif path.startswith("/apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers") and "watch=true" in path:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._chunk({"type": "MODIFIED", "object": hpa_json("701")})
            self.wfile.write(b"0\r\n\r\n")
        elif path.startswith("/apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers"):
            self._send(200, {"kind": "HorizontalPodAutoscalerList", "metadata": {"resourceVersion": "700"}, "items": [hpa_json()]})
        else:
            self._send(404, {"kind": "Status", "code": 404, "message": f"no route {path}"})

    def do_POST(self) -> None:
        self._record()
        if self.path.endswith("/eviction"):
            self._send(429, PDB_REFUSAL)
        else:
            self._send(201, {})

    def do_PATCH(self) -> None:
        self._record()
        self._send(200, {"kind": "Node", "metadata": {"name": "n1"}})


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    ApiServer.requests = []
    ApiServer.release = threading.Event()
    ApiServer.metrics_status = 404
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ApiServer)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    ApiServer.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def kubeconfig(tmp_path: Path, port: int, context: str = "kind-test") -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: local, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: dev, user: {{token: not-a-secret}}}}]
contexts: [{{name: {context}, context: {{cluster: local, user: dev}}}}]
current-context: {context}
"""
    )
    return path


def spec(path: Path, **fields: Any) -> KubernetesClusterSpec:
    return KubernetesClusterSpec.model_validate({"kubeconfig": str(path), **fields})


def test_api_answers_become_records_and_our_errors(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    api = connect(spec(kubeconfig(tmp_path, server.server_address[1])), environ={})
    try:
        assert api.connection.context == "kind-test"
        assert api.connection.server == f"http://127.0.0.1:{server.server_address[1]}"

        listing = api.list_pods("ns", "app.kubernetes.io/name=web")
        (pod,) = listing.items
        assert (pod.name, pod.node, pod.ready, listing.resource_version) == ("web-7d9f8c6b5-abcde", "minikube-m02", True, "500")

        with pytest.raises(ClusterError) as forbidden:
            api.list_nodes()
        assert "cannot list resource \"nodes\"" in str(forbidden.value) and "HTTP 403" in str(forbidden.value)
        assert "the user of context 'kind-test' lacks the permission" in str(forbidden.value)
        assert forbidden.value.exit_code == EXIT_ENVIRONMENT
        assert isinstance(forbidden.value.__cause__, ApiException)  # chained, message kept

        with pytest.raises(EvictionBlocked, match="violate the pod's disruption budget"):
            api.evict_pod("ns", "web-1", 5)
        method, path, _, body = ApiServer.requests[-1]
        assert (method, path) == ("POST", "/api/v1/namespaces/ns/pods/web-1/eviction")
        assert json.loads(body)["deleteOptions"] == {"gracePeriodSeconds": 5}

        with pytest.raises(NotFound, match='namespaces "gone" not found'):
            api.read_namespace("gone")

        with pytest.raises(ClusterError, match=r"HTTP 401; the API server did not accept the credentials of context 'kind-test'"):
            api.read_namespace("locked")

        api.set_node_unschedulable("n1", True)
        method, path, content_type, body = ApiServer.requests[-1]
        assert (method, path, json.loads(body)) == ("PATCH", "/api/v1/nodes/n1", {"spec": {"unschedulable": True}})
        assert "patch+json" in content_type
    finally:
        api.close()


def test_a_watch_yields_events_then_410_gone(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    api = connect(spec(kubeconfig(tmp_path, server.server_address[1])), environ={})
    try:
        stream = api.watch("pods", "ns", "500", label_selector="app.kubernetes.io/name=web", timeout_seconds=5)
        seen = []
        with pytest.raises(WatchExpired, match="too old resource version"):
            for event in stream:
                seen.append((event.type, event.resource_version))
        assert seen == [("MODIFIED", "501"), ("BOOKMARK", "650")]
        path = ApiServer.requests[-1][1]
        assert "watch=true" in path and "allowWatchBookmarks=true" in path and "timeoutSeconds=5" in path
    finally:
        api.close()


def test_closing_a_quiet_watch_from_another_thread_ends_it(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    api = connect(spec(kubeconfig(tmp_path, server.server_address[1])), environ={})
    try:
        stream = api.watch("pods", "ns", "700", timeout_seconds=60)
        done = threading.Event()
        events: list[object] = []

        def read() -> None:
            events.extend(stream)
            done.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(0.2)
        stream.close()
        assert done.wait(10), "close() did not unblock the reading thread"
        assert events == []
    finally:
        api.close()


def test_an_unreachable_server_is_one_paragraph_saying_what_was_tried(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = kubeconfig(tmp_path, port)
    started = time.monotonic()
    with pytest.raises(ClusterError) as caught:
        connect(spec(path), environ={})
    message = str(caught.value)
    assert caught.value.exit_code == EXIT_ENVIRONMENT
    assert f"kubeconfig {path} with context 'kind-test' (server http://127.0.0.1:{port})" in message
    assert "Connection refused" in message and "minikube status" in message and "\n" not in message
    assert time.monotonic() - started < 30


def test_no_kubeconfig_and_not_in_a_pod(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="no Kubernetes cluster is configured.*KUBERNETES_SERVICE_HOST"):
        connect(KubernetesClusterSpec(), environ={"KUBECONFIG": str(tmp_path / "missing")})


def test_inside_a_pod_the_service_account_is_used_and_its_files_named(tmp_path: Path) -> None:
    environ = {"KUBECONFIG": str(tmp_path / "missing"), "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"}
    with pytest.raises(ClusterError, match=f"in-cluster configuration failed: .*{tmp_path / 'sa'}"):
        connect(KubernetesClusterSpec(), environ=environ, service_account_dir=tmp_path / "sa")


def test_an_unknown_context_lists_the_known_ones(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, 1)
    with pytest.raises(ClusterError, match=r"no context 'prod' \(it has: kind-test\)"):
        connect(spec(path, context="prod"), environ={})


def test_generated_objects_reach_the_server_exactly_as_built(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    """The client validates bodies against its models before sending; nothing may be
    lost or renamed on the way (int-or-string ports, tolerations, PDB percentages)."""
    from chaoslab.cluster.kube.manifests import generated_objects
    from tests.kubernetes.conftest import workload

    objects = generated_objects(
        workload(
            livenessProbe={"httpGet": {"path": "/healthz", "port": 8081}},
            podDisruptionBudget={"maxUnavailable": "50%"},
            resources={"requests": {"cpu": "50m", "memory": "64Mi"}},
            env=[{"name": "A", "value": "1"}],
        ),
        python_image="python:3.12-slim",
        app_source="print('app')\n",
    )
    api = connect(spec(kubeconfig(tmp_path, server.server_address[1])), environ={})
    try:
        for body in objects.objects:
            api.create_object("ns", body)
            method, path, _, sent = ApiServer.requests[-1]
            assert method == "POST" and path.startswith(("/api/v1/namespaces/ns/", "/apis/"))
            assert json.loads(sent) == json.loads(json.dumps(body)), body["kind"]
    finally:
        api.close()


def test_exec_status_is_read_from_the_error_channel() -> None:
    from chaoslab.cluster.kube.client import _exec_result
    from chaoslab.cluster.kube.records import ExecUnsupported

    assert _exec_result("exec", '{"metadata":{},"status":"Success"}', "7\n", "").exit_code == 0
    nonzero = {
        "metadata": {}, "status": "Failure", "message": "command terminated with non-zero exit code: error executing command [/bin/sh -c ...], exit code 97",
        "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": "97"}]},
    }
    assert _exec_result("exec", json.dumps(nonzero), "", "PID 1").exit_code == 97
    missing = {
        "metadata": {}, "status": "Failure", "reason": "InternalError",
        "message": 'Internal error occurred: error executing command in container: failed to exec in container: failed to start exec "3f2a": OCI runtime exec failed: exec failed: unable to start container process: exec: "/bin/sh": stat /bin/sh: no such file or directory: unknown',
    }
    with pytest.raises(ExecUnsupported, match="stat /bin/sh"):
        _exec_result("exec", json.dumps(missing), "", "")
