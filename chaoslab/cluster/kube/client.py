"""The one module that imports `kubernetes`: our thin boundary over the API calls we make.

Why it exists: the backend needs about twenty API calls. Wrapping exactly those, with
our own records in and out (`records.py`), keeps every `kubernetes` type and exception
inside this file: `ApiException`, urllib3's `MaxRetryError` / `NewConnectionError` /
timeouts and `ConfigException` all become `ClusterError` (exit 3) with the API's own
message kept and the original chained (`raise ... from exc`). Tests fake `KubeApi` at
this level instead of patching inside the client.

Responses are read as raw JSON (`_preload_content=False`) and converted by
`convert.py`, which behaves the same on every version of the generated client; watches
are read line by line from the raw response for the same reason, and so that `close()`
can end a blocked read from another thread.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.config import list_kube_config_contexts, new_client_from_config
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import InClusterConfigLoader
from kubernetes.stream import stream as k8s_stream

from chaoslab.cluster.kube import convert
from chaoslab.cluster.kube.records import (
    Connection,
    DeploymentRecord,
    EvictionBlocked,
    ExecResult,
    ExecUnsupported,
    Listing,
    NamespaceRecord,
    NotFound,
    ServiceRecord,
    WatchEvent,
    WatchExpired,
    WatchKind,
)
from chaoslab.errors import ClusterError
from chaoslab.spec import KubernetesClusterSpec

# Where Kubernetes mounts a pod's service-account token and cluster CA.
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# Bound on every ordinary API call (connect, read); the API server answers in
# milliseconds when healthy, so 30 s only ever fires on a broken connection.
REQUEST_TIMEOUT_SECONDS = 30.0
# Bound on the reachability check when connecting: fail fast with a clear message.
CONNECT_CHECK_TIMEOUT_SECONDS = 10.0
# A watch's read timeout is its server-side timeoutSeconds plus this margin, so a
# silently dead connection is noticed soon after the server should have closed it.
WATCH_READ_MARGIN_SECONDS = 15.0
# kubectl's default kubeconfig location when neither the spec nor KUBECONFIG names one.
DEFAULT_KUBECONFIG = "~/.kube/config"
# The exec ERROR channel (remotecommand v4): a metav1.Status when the command ended.
_EXEC_ERROR_CHANNEL = 3
_EXEC_STDOUT_CHANNEL = 1
_EXEC_STDERR_CHANNEL = 2

_NETWORK_ERRORS = (urllib3.exceptions.HTTPError, OSError)


def _api_message(exc: ApiException) -> str:
    """The API's own message (metav1.Status.message) when the body has one."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str) and body.strip():
        try:
            status = json.loads(body)
        except ValueError:
            return body.strip()[:500]
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
    return str(exc.reason or "").strip() or f"HTTP {exc.status}"


def _network_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    text = str(reason if reason is not None else exc)
    # urllib3 wraps the socket error in "<urllib3.connection.HTTPConnection object at
    # 0x..>: Failed to establish a new connection: [Errno 111] Connection refused".
    if "Failed to establish a new connection:" in text:
        text = text.split("Failed to establish a new connection:", 1)[1].strip()
    return text


class KubeClient:
    """`KubeApi` over the official client: one ApiClient, the calls the backend makes."""

    def __init__(
        self,
        api_client: Any,
        connection: Connection,
        *,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
        tried: tuple[str, ...] = (),
    ) -> None:
        self._api_client = api_client
        self.connection = connection
        self._timeout = request_timeout
        self._tried = tried
        self._core = k8s.CoreV1Api(api_client)
        self._apps = k8s.AppsV1Api(api_client)
        self._policy = k8s.PolicyV1Api(api_client)
        self._discovery = k8s.DiscoveryV1Api(api_client)
        self._autoscaling = k8s.AutoscalingV2Api(api_client)
        self._storage = k8s.StorageV1Api(api_client)

    # --- error mapping --------------------------------------------------------------

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn every client, HTTP and network failure into our ClusterError family."""
        try:
            yield
        except ApiException as exc:
            message = _api_message(exc)
            status = exc.status
            if status == 410:
                raise WatchExpired(f"{action}: {message} (410 Gone)") from exc
            if status == 404:
                raise NotFound(f"{action}: not found: {message}") from exc
            if status == 429 and "evict" in action:
                raise EvictionBlocked(f"{action}: {message}") from exc
            if status == 401:
                raise ClusterError(
                    f"{action}: {message} (HTTP 401; the API server did not accept the "
                    f"credentials of {self._where()}: an expired token or certificate?)"
                ) from exc
            if status == 403:
                who = f"the user of {self._where()}" if self.connection.context else "this pod's service account"
                raise ClusterError(
                    f"{action}: {message} (HTTP 403; {who} lacks the permission; chaoslab "
                    "needs to manage namespaces, Deployments, StatefulSets, Services, ConfigMaps, "
                    "PodDisruptionBudgets, HorizontalPodAutoscalers, PersistentVolumeClaims, pods (delete, evict, exec), "
                    "to list StorageClasses and to patch nodes)"
                ) from exc
            if not status:  # status 0: the client could not even build or send the request
                raise ClusterError(f"{action}: {message} ({self._where()})") from exc
            raise ClusterError(f"{action}: HTTP {status}: {message}") from exc
        except _NETWORK_ERRORS as exc:
            raise ClusterError(
                f"{action}: the API server at {self.connection.server} did not answer: "
                f"{_network_reason(exc)} ({self._where()})"
            ) from exc
        except ConfigException as exc:
            raise ClusterError(f"{action}: kubeconfig problem: {exc}") from exc

    def _where(self) -> str:
        context = self.connection.context
        return f"context {context!r}" if context else self.connection.source

    def _json(
        self, action: str, call: Callable[..., Any], *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """One call, its body read in full before the connection goes back to the pool
        (an unread body would become the next answer's status line), parsed as JSON."""
        with self._errors(action):
            response = call(*args, _preload_content=False, _request_timeout=timeout or self._timeout, **kwargs)
            try:
                data = response.data
            finally:
                response.release_conn()
        if not data:
            return {}
        try:
            parsed = json.loads(data)
        except ValueError as exc:
            raise ClusterError(f"{action}: the API server sent something that is not JSON: {data[:200]!r}") from exc
        return parsed if isinstance(parsed, dict) else {}

    # --- namespaces -----------------------------------------------------------------

    def read_namespace(self, name: str) -> NamespaceRecord:
        return convert.namespace_from_json(self._json(f"read namespace {name}", self._core.read_namespace, name))

    def create_namespace(self, name: str, labels: Mapping[str, str]) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels)}}
        self._json(f"create namespace {name}", self._core.create_namespace, body)

    def delete_namespace(self, name: str) -> None:
        self._json(f"delete namespace {name}", self._core.delete_namespace, name)

    # --- workload objects -----------------------------------------------------------

    def _creators(self) -> dict[str, Callable[..., Any]]:
        return {
            "Deployment": self._apps.create_namespaced_deployment,
            "StatefulSet": self._apps.create_namespaced_stateful_set,
            "Service": self._core.create_namespaced_service,
            "ConfigMap": self._core.create_namespaced_config_map,
            "Secret": self._core.create_namespaced_secret,
            "ServiceAccount": self._core.create_namespaced_service_account,
            "PodDisruptionBudget": self._policy.create_namespaced_pod_disruption_budget,
            "HorizontalPodAutoscaler": self._autoscaling.create_namespaced_horizontal_pod_autoscaler,
        }

    def _deleters(self) -> dict[str, Callable[..., Any]]:
        return {
            "Deployment": self._apps.delete_namespaced_deployment,
            "StatefulSet": self._apps.delete_namespaced_stateful_set,
            "PersistentVolumeClaim": self._core.delete_namespaced_persistent_volume_claim,
            "Service": self._core.delete_namespaced_service,
            "ConfigMap": self._core.delete_namespaced_config_map,
            "Secret": self._core.delete_namespaced_secret,
            "ServiceAccount": self._core.delete_namespaced_service_account,
            "PodDisruptionBudget": self._policy.delete_namespaced_pod_disruption_budget,
            "HorizontalPodAutoscaler": self._autoscaling.delete_namespaced_horizontal_pod_autoscaler,
        }

    def create_object(self, namespace: str, body: Mapping[str, Any]) -> None:
        kind = str(body.get("kind", ""))
        name = (body.get("metadata") or {}).get("name", "")
        creator = self._creators().get(kind)
        if creator is None:
            raise ClusterError(f"cannot create {kind} {name}: kind not supported")
        self._json(f"create {kind} {namespace}/{name}", creator, namespace, dict(body))

    def delete_object(self, namespace: str, kind: str, name: str) -> None:
        deleter = self._deleters().get(kind)
        if deleter is None:
            raise ClusterError(f"cannot delete {kind} {name}: kind not supported")
        self._json(f"delete {kind} {namespace}/{name}", deleter, name, namespace)

    def has_resource_metrics(self) -> bool:
        """GET /apis/metrics.k8s.io/v1beta1: 404 (not registered) or 503 (its APIService,
        metrics-server, is not available) mean no; a resource list means yes."""
        try:
            self._json(
                "discover the resource metrics API",
                k8s.CustomObjectsApi(self._api_client).get_api_resources,
                "metrics.k8s.io",
                "v1beta1",
            )
        except NotFound:
            return False
        except ClusterError as exc:
            if isinstance(exc.__cause__, ApiException) and exc.__cause__.status == 503:
                return False
            raise
        return True

    def read_deployment(self, namespace: str, name: str) -> DeploymentRecord:
        raw = self._json(f"read Deployment {namespace}/{name}", self._apps.read_namespaced_deployment, name, namespace)
        return convert.deployment_from_json(raw)

    def patch_deployment_scale(self, namespace: str, name: str, replicas: int) -> None:
        self._json(
            f"scale Deployment {namespace}/{name}",
            self._apps.patch_namespaced_deployment_scale,
            name,
            namespace,
            {"spec": {"replicas": replicas}},
        )

    def read_service(self, namespace: str, name: str) -> ServiceRecord:
        raw = self._json(f"read Service {namespace}/{name}", self._core.read_namespaced_service, name, namespace)
        return convert.service_from_json(raw)

    def read_stateful_set(self, namespace: str, name: str) -> DeploymentRecord:
        raw = self._json(f"read StatefulSet {namespace}/{name}", self._apps.read_namespaced_stateful_set, name, namespace)
        return convert.deployment_from_json(raw)

    def patch_stateful_set_scale(self, namespace: str, name: str, replicas: int) -> None:
        self._json(
            f"scale StatefulSet {namespace}/{name}",
            self._apps.patch_namespaced_stateful_set_scale,
            name,
            namespace,
            {"spec": {"replicas": replicas}},
        )

    def list_claims(self, namespace: str, label_selector: str = "") -> tuple[str, ...]:
        raw = self._json(
            f"list PersistentVolumeClaims in {namespace}",
            self._core.list_namespaced_persistent_volume_claim,
            namespace,
            label_selector=label_selector or None,
        )
        return tuple(sorted(str((item.get("metadata") or {}).get("name", "")) for item in raw.get("items") or ()))

    def default_storage_class(self) -> str | None:
        raw = self._json("list StorageClasses", self._storage.list_storage_class)
        return convert.default_storage_class(raw.get("items") or ())

    # --- pods -----------------------------------------------------------------------

    def list_pods(self, namespace: str, label_selector: str = "") -> Listing:
        raw = self._json(
            f"list pods in {namespace}", self._core.list_namespaced_pod, namespace, label_selector=label_selector or None
        )
        return _listing(raw, convert.pod_from_json)

    def delete_pod(self, namespace: str, name: str, grace_period_seconds: int | None) -> None:
        self._json(
            f"delete pod {namespace}/{name}",
            self._core.delete_namespaced_pod,
            name,
            namespace,
            grace_period_seconds=grace_period_seconds,
        )

    def evict_pod(self, namespace: str, name: str, grace_period_seconds: int | None) -> None:
        delete_options: dict[str, Any] = {}
        if grace_period_seconds is not None:
            delete_options["gracePeriodSeconds"] = grace_period_seconds
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
            "deleteOptions": delete_options,
        }
        self._json(f"evict pod {namespace}/{name}", self._core.create_namespaced_pod_eviction, name, namespace, body)

    def exec_in_container(
        self, namespace: str, pod: str, container: str, command: list[str], timeout: float
    ) -> ExecResult:
        action = f"exec in {namespace}/{pod} container {container}"
        # `stream` swaps the ApiClient's transport for a websocket while it runs; a
        # client of its own keeps the watches (other threads) on plain HTTP.
        exec_client = k8s.ApiClient(self._api_client.configuration)
        try:
            with self._errors(action):
                try:
                    session = k8s_stream(
                        k8s.CoreV1Api(exec_client).connect_get_namespaced_pod_exec,
                        pod,
                        namespace,
                        container=container,
                        command=command,
                        stderr=True,
                        stdin=False,
                        stdout=True,
                        tty=False,
                        _preload_content=False,
                        _request_timeout=timeout,
                    )
                except ApiException as exc:
                    message = _api_message(exc)
                    if _looks_like_missing_binary(message):
                        raise ExecUnsupported(f"{action}: {message}") from exc
                    raise
                session.run_forever(timeout=timeout)
                stdout = session.read_channel(_EXEC_STDOUT_CHANNEL)
                stderr = session.read_channel(_EXEC_STDERR_CHANNEL)
                status_text = session.read_channel(_EXEC_ERROR_CHANNEL)
                still_open = session.is_open()
                session.close()
        finally:
            exec_client.close()
        if still_open:
            raise ClusterError(f"{action}: {command[0]} did not finish within {timeout:g}s")
        return _exec_result(action, status_text, stdout, stderr)

    # --- nodes ----------------------------------------------------------------------

    def list_nodes(self) -> Listing:
        return _listing(self._json("list nodes", self._core.list_node), convert.node_from_json)

    def set_node_unschedulable(self, name: str, unschedulable: bool) -> None:
        verb = "cordon" if unschedulable else "uncordon"
        self._json(f"{verb} node {name}", self._core.patch_node, name, {"spec": {"unschedulable": unschedulable}})

    # --- endpoints and events -------------------------------------------------------

    def list_endpoint_slices(self, namespace: str, label_selector: str = "") -> Listing:
        raw = self._json(
            f"list EndpointSlices in {namespace}",
            self._discovery.list_namespaced_endpoint_slice,
            namespace,
            label_selector=label_selector or None,
        )
        return _listing(raw, convert.endpoint_slice_from_json)

    def list_events(self, namespace: str, field_selector: str = "") -> Listing:
        raw = self._json(
            f"list events in {namespace}",
            self._core.list_namespaced_event,
            namespace,
            field_selector=field_selector or None,
        )
        return _listing(raw, convert.event_from_json)

    # --- autoscalers -----------------------------------------------------------------

    def list_autoscalers(self, namespace: str) -> Listing:
        raw = self._json(
            f"list HorizontalPodAutoscalers in {namespace}",
            self._autoscaling.list_namespaced_horizontal_pod_autoscaler,
            namespace,
        )
        return _listing(raw, convert.autoscaler_from_json)

    # --- watches --------------------------------------------------------------------

    def watch(
        self,
        kind: WatchKind,
        namespace: str | None,
        resource_version: str,
        *,
        label_selector: str = "",
        timeout_seconds: int = 60,
    ) -> _RawWatch:
        calls: dict[str, tuple[Callable[..., Any], Callable[[Any], Any]]] = {
            "pods": (self._core.list_namespaced_pod, convert.pod_from_json),
            "endpointslices": (self._discovery.list_namespaced_endpoint_slice, convert.endpoint_slice_from_json),
            "events": (self._core.list_namespaced_event, convert.event_from_json),
            "nodes": (self._core.list_node, convert.node_from_json),
            "horizontalpodautoscalers": (
                self._autoscaling.list_namespaced_horizontal_pod_autoscaler,
                convert.autoscaler_from_json,
            ),
        }
        call, converter = calls[kind]
        args: tuple[Any, ...] = () if kind == "nodes" else (namespace,)
        action = f"watch {kind}" + (f" in {namespace}" if namespace else "")
        with self._errors(action):
            response = call(
                *args,
                watch=True,
                resource_version=resource_version or None,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout_seconds,
                label_selector=label_selector or None,
                _preload_content=False,
                _request_timeout=(self._timeout, timeout_seconds + WATCH_READ_MARGIN_SECONDS),
            )
        return _RawWatch(response, converter, action, self._errors)

    def check_reachable(self) -> None:
        """GET /version; one paragraph saying what was tried when nothing answers."""
        try:
            self._json("connect", k8s.VersionApi(self._api_client).get_code, timeout=CONNECT_CHECK_TIMEOUT_SECONDS)
        except ClusterError as exc:
            cause = str(exc).removeprefix("connect: ")
            tried = "; ".join(self._tried) or self.connection.source
            raise ClusterError(
                f"cannot reach a Kubernetes API server. Tried {tried}: {cause}. "
                "Check that the cluster is running (`minikube status`, `kind get clusters`, "
                "`kubectl cluster-info`), that the context is the one you meant "
                "(cluster.kubernetes.context or --context), and that this machine can reach "
                "its server address; to run without a cluster use backend: sim"
            ) from exc

    def close(self) -> None:
        self._api_client.close()


class _RawWatch:
    """One watch request, read line by line; `close` unblocks a reader in another thread."""

    def __init__(
        self,
        response: Any,
        converter: Callable[[Any], Any],
        action: str,
        errors: Callable[[str], Any],
    ) -> None:
        self._response = response
        self._converter = converter
        self._action = action
        self._errors = errors
        self._closed = False

    def __iter__(self) -> Iterator[WatchEvent]:
        try:
            for line in self._lines():
                event = self._event(line)
                if event is not None:
                    yield event
        except ClusterError:
            if self._closed:
                return  # close() shut the socket under a blocked read: the end we asked for
            raise
        finally:
            self._response.close()
            self._response.release_conn()

    def _lines(self) -> Iterator[bytes]:
        buffer = b""
        with self._errors(self._action):
            for chunk in self._response.stream(amt=None, decode_content=False):
                buffer += chunk if isinstance(chunk, bytes) else chunk.encode()
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield line
                if self._closed:
                    return
        if buffer.strip():
            yield buffer

    def _event(self, line: bytes) -> WatchEvent | None:
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise ClusterError(f"{self._action}: unreadable watch event {line[:200]!r}") from exc
        type_ = raw.get("type")
        obj = raw.get("object") or {}
        if type_ == "ERROR":
            # A metav1.Status inside the stream: 410 means our resourceVersion is too old.
            code = obj.get("code")
            message = obj.get("message") or obj.get("reason") or "watch error"
            if code == 410:
                raise WatchExpired(f"{self._action}: {message} (410 Gone)")
            raise ClusterError(f"{self._action}: HTTP {code}: {message}")
        version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        if type_ == "BOOKMARK":
            return WatchEvent("BOOKMARK", None, version)
        if type_ not in ("ADDED", "MODIFIED", "DELETED"):
            return None
        return WatchEvent(type_, self._converter(obj), version)

    def close(self) -> None:
        self._closed = True
        connection = getattr(self._response, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the server: nothing left to unblock


def _listing(raw: Mapping[str, Any], converter: Callable[[Any], Any]) -> Listing:
    return Listing(
        items=tuple(converter(item) for item in raw.get("items") or ()),
        resource_version=str((raw.get("metadata") or {}).get("resourceVersion", "")),
    )


def _looks_like_missing_binary(message: str) -> bool:
    lowered = message.lower()
    return any(
        marker in lowered
        for marker in ("no such file or directory", "executable file not found", "not found in $path")
    )


def _exec_result(action: str, status_text: str, stdout: str, stderr: str) -> ExecResult:
    """The command's exit code from the exec ERROR channel's metav1.Status."""
    if not status_text.strip():
        return ExecResult(exit_code=None, stdout=stdout, stderr=stderr)
    try:
        status = json.loads(status_text)
    except ValueError as exc:
        raise ClusterError(f"{action}: unreadable exec status {status_text[:200]!r}") from exc
    if status.get("status") == "Success":
        return ExecResult(exit_code=0, stdout=stdout, stderr=stderr)
    causes = (status.get("details") or {}).get("causes") or ()
    for cause in causes:
        if cause.get("reason") == "ExitCode":
            return ExecResult(exit_code=int(cause.get("message", 1)), stdout=stdout, stderr=stderr)
    message = str(status.get("message") or status_text)
    if _looks_like_missing_binary(message):
        raise ExecUnsupported(f"{action}: {message}")
    raise ClusterError(f"{action}: {message}")


# --- connecting ----------------------------------------------------------------------


def kubeconfig_path(spec: KubernetesClusterSpec, environ: Mapping[str, str]) -> str:
    """The kubeconfig the spec names, else $KUBECONFIG, else kubectl's default."""
    return spec.kubeconfig or environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG


def connect(
    spec: KubernetesClusterSpec,
    *,
    environ: Mapping[str, str] | None = None,
    request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    check: bool = True,
    service_account_dir: Path = SERVICE_ACCOUNT_DIR,
) -> KubeClient:
    """A client for the cluster the spec names, checked to answer (unless `check` is off).

    Tries the kubeconfig (spec.kubeconfig, else $KUBECONFIG, else ~/.kube/config) with
    spec.context (else its current context); when no kubeconfig file exists and no
    context was asked for, the in-cluster service account (KUBERNETES_SERVICE_HOST and
    _PORT from `environ`, token and CA from `service_account_dir`). Raises ClusterError
    with one paragraph saying what was tried when nothing answers.
    """
    env = os.environ if environ is None else environ
    path = kubeconfig_path(spec, env)
    files = [Path(p).expanduser() for p in path.split(os.pathsep) if p]
    existing = [f for f in files if f.is_file()]
    tried: list[str] = []
    if existing:
        config_file = os.pathsep.join(str(f) for f in existing)
        try:
            contexts, active = list_kube_config_contexts(config_file)
        except ConfigException as exc:
            raise ClusterError(f"cannot read kubeconfig {config_file}: {exc}") from exc
        names = [c.get("name", "") for c in contexts or ()]
        context = spec.context or (active or {}).get("name")
        if spec.context and spec.context not in names:
            raise ClusterError(
                f"kubeconfig {config_file} has no context {spec.context!r} "
                f"(it has: {', '.join(names) or 'none'}); set cluster.kubernetes.context "
                "or --context to one of them"
            )
        try:
            api_client = new_client_from_config(config_file=config_file, context=context, persist_config=False)
        except (ConfigException, OSError, ValueError) as exc:
            raise ClusterError(f"cannot load context {context!r} from kubeconfig {config_file}: {exc}") from exc
        connection = Connection(context=context, server=api_client.configuration.host, source=f"kubeconfig {config_file}")
        tried.append(f"kubeconfig {config_file} with context {context!r} (server {connection.server})")
    elif spec.context:
        raise ClusterError(
            f"context {spec.context!r} was asked for, but there is no kubeconfig at {path}; "
            "set cluster.kubernetes.kubeconfig or KUBECONFIG to the file that defines it"
        )
    elif env.get("KUBERNETES_SERVICE_HOST"):
        configuration = k8s.Configuration()
        try:
            InClusterConfigLoader(
                token_filename=str(service_account_dir / "token"),
                cert_filename=str(service_account_dir / "ca.crt"),
                environ=env,
            ).load_and_set(configuration)
        except ConfigException as exc:
            raise ClusterError(
                f"in-cluster configuration failed: {exc} (KUBERNETES_SERVICE_HOST="
                f"{env.get('KUBERNETES_SERVICE_HOST')}, KUBERNETES_SERVICE_PORT="
                f"{env.get('KUBERNETES_SERVICE_PORT', '')}, service account files in {service_account_dir}); "
                "outside a pod, point cluster.kubernetes.kubeconfig (or KUBECONFIG) at a kubeconfig"
            ) from exc
        api_client = k8s.ApiClient(configuration)
        connection = Connection(context=None, server=configuration.host, source="in-cluster service account")
        tried.append(f"the in-cluster service account (server {connection.server})")
    else:
        raise ClusterError(
            f"no Kubernetes cluster is configured: there is no kubeconfig at {path} and "
            "chaoslab is not running inside a pod (KUBERNETES_SERVICE_HOST is not set). "
            "Start a cluster (`minikube start --nodes 3 --driver=docker` or `kind create "
            "cluster`), or point cluster.kubernetes.kubeconfig (or KUBECONFIG) at its "
            "kubeconfig; to run without a cluster use backend: sim"
        )
    kube = KubeClient(api_client, connection, request_timeout=request_timeout, tried=tuple(tried))
    if check:
        try:
            kube.check_reachable()
        except ClusterError:
            kube.close()
            raise
    return kube
