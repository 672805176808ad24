"""An in-memory API server behind our `KubeApi` wrapper, for the kubernetes backend's tests.

It fakes the wrapper (our boundary), never the `kubernetes` client: objects are stored as
the JSON the API server sends (pods with statuses and conditions, nodes with labels,
taints and addresses, EndpointSlices) and handed out through the same converters the
real wrapper uses. It behaves like the controllers just enough for the backend to be
driven end to end: a Deployment gets its pods, pods get scheduled (preferring workers),
become Ready and enter the Service's EndpointSlice; deleted or evicted pods are
replaced; PodDisruptionBudgets block evictions; `evaluate_autoscaler` plays one sync of
the HPA controller (status written, target scaled, SuccessfulRescale Event); every change
is appended to a watch log with a resourceVersion, and `compact()` expires old versions
so that resuming a watch fails with 410 Gone, as after an etcd compaction.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from chaoslab.cluster.kube import convert
from chaoslab.cluster.kube.records import (
    Connection,
    DeploymentRecord,
    EvictionBlocked,
    ExecResult,
    Listing,
    NamespaceRecord,
    NotFound,
    ServiceRecord,
    WatchEvent,
    WatchExpired,
)
from chaoslab.errors import ClusterError

CONTROL_PLANE = "node-role.kubernetes.io/control-plane"
# The watch (resource) name of the kinds the fake stores under their `kind`.
WATCHED_KINDS = {"horizontalpodautoscalers": "HorizontalPodAutoscaler"}


def rfc3339(ts: float) -> str:
    """metav1.Time: whole seconds, UTC, `Z`."""
    return datetime.fromtimestamp(int(ts), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_json(name: str, address: str, *, control_plane: bool = False, ready: str = "True") -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    if control_plane:
        labels[CONTROL_PLANE] = ""
    taints = [{"key": CONTROL_PLANE, "effect": "NoSchedule"}] if control_plane else []
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "resourceVersion": "1"},
        "spec": {"taints": taints} if taints else {},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastTransitionTime": "2026-11-27T10:00:00Z",
                },
            ],
            "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}],
        },
    }


def minikube_nodes() -> list[dict[str, Any]]:
    """A 3-node minikube (docker driver): one control plane that also runs workloads."""
    return [
        node_json("minikube", "192.168.49.2", control_plane=True),
        node_json("minikube-m02", "192.168.49.3"),
        node_json("minikube-m03", "192.168.49.4"),
    ]


def kind_nodes() -> list[dict[str, Any]]:
    return [
        node_json("kind-control-plane", "172.18.0.2", control_plane=True),
        node_json("kind-worker", "172.18.0.3"),
        node_json("kind-worker2", "172.18.0.4"),
        node_json("kind-worker3", "172.18.0.5"),
    ]


def _matches(labels: Mapping[str, str], selector: str) -> bool:
    for part in filter(None, selector.split(",")):
        key, _, value = part.partition("=")
        if labels.get(key) != value:
            return False
    return True


class FakeWatch:
    """A watch stream over the fake's log; blocks for new entries like a real watch."""

    def __init__(self, api: FakeKubeApi, kind: str, namespace: str | None, after: int, selector: str, timeout: float) -> None:
        self.api = api
        self.kind = kind
        self.namespace = namespace
        self.position = after
        self.selector = selector
        self.deadline = time.monotonic() + timeout
        self.closed = False
        self.expired = False

    def __iter__(self) -> Iterator[WatchEvent]:
        api = self.api
        while True:
            with api.cond:
                while True:
                    if self.closed:
                        return
                    if self.expired:
                        raise WatchExpired(f"watch {self.kind}: too old resource version: {self.position} (410 Gone)")
                    entry = api.next_entry(self.kind, self.namespace, self.position, self.selector)
                    if entry is not None:
                        break
                    remaining = self.deadline - time.monotonic()
                    if remaining <= 0:
                        return  # the server ends the watch after timeoutSeconds
                    api.cond.wait(min(remaining, 0.05))
                rv, type_, obj = entry
                self.position = rv
            yield WatchEvent(type_, api.convert(self.kind, obj), str(rv))

    def close(self) -> None:
        with self.api.cond:
            self.closed = True
            self.api.cond.notify_all()


class FakeKubeApi:
    """`KubeApi` over an in-memory cluster. `calls` records every mutating call."""

    def __init__(
        self,
        *,
        context: str | None = "minikube",
        nodes: list[dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connection = Connection(context=context, server="https://192.168.49.2:8443", source="kubeconfig /tmp/fake-kubeconfig")
        self.clock = clock
        self.cond = threading.Condition(threading.RLock())
        self.rv = 1000
        self.compacted = 0
        self.namespaces: dict[str, dict[str, Any]] = {
            name: {"metadata": {"name": name}, "status": {"phase": "Active"}}
            for name in ("default", "kube-system", "kube-public", "kube-node-lease")
        }
        self.store: dict[tuple[str, str, str], dict[str, Any]] = {}
        for node in nodes if nodes is not None else minikube_nodes():
            self.store[("nodes", "", node["metadata"]["name"])] = node
        self.log: list[tuple[int, str, str, str, dict[str, Any]]] = []
        self.calls: list[tuple[Any, ...]] = []
        self.watches: list[FakeWatch] = []
        self.fail: dict[str, ClusterError] = {}
        self.exec_handler: Callable[[str, str, str, list[str]], ExecResult] = lambda ns, pod, c, cmd: ExecResult(0, "7\n", "")
        self.replace_pods = True
        # Whether metrics.k8s.io is served (metrics-server installed).
        self.resource_metrics = True
        # StorageClasses: name -> whether it is the default (list_storage_class).
        self.storage_classes: dict[str, bool] = {"standard": True}
        self.closed = False
        self._names = itertools.count(1)
        self._node_ports = itertools.count(30080)

    # --- the log and conversions ------------------------------------------------------

    def convert(self, kind: str, obj: dict[str, Any]) -> Any:
        converter = {
            "pods": convert.pod_from_json,
            "nodes": convert.node_from_json,
            "endpointslices": convert.endpoint_slice_from_json,
            "events": convert.event_from_json,
            "HorizontalPodAutoscaler": convert.autoscaler_from_json,
        }[kind]
        return converter(obj)

    def _record(self, kind: str, namespace: str, type_: str, obj: dict[str, Any]) -> None:
        with self.cond:
            self.rv += 1
            obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
            key = (kind, namespace, obj["metadata"]["name"])
            if type_ == "DELETED":
                self.store.pop(key, None)
            else:
                self.store[key] = obj
            self.log.append((self.rv, kind, namespace, type_, copy.deepcopy(obj)))
            self.cond.notify_all()

    def next_entry(self, kind: str, namespace: str | None, after: int, selector: str) -> tuple[int, str, dict[str, Any]] | None:
        for rv, entry_kind, entry_namespace, type_, obj in self.log:
            if rv <= after or entry_kind != kind:
                continue
            if namespace is not None and entry_namespace != namespace:
                continue
            if selector and not _matches(obj["metadata"].get("labels") or {}, selector):
                continue
            return rv, type_, obj
        return None

    def compact(self) -> None:
        """etcd compaction: every version up to now is gone; open watches get 410."""
        with self.cond:
            self.compacted = self.rv
            for watch in self.watches:
                watch.expired = True
            self.cond.notify_all()

    def _items(self, kind: str, namespace: str | None, selector: str = "") -> list[dict[str, Any]]:
        with self.cond:
            return [
                copy.deepcopy(obj)
                for (k, ns, _), obj in sorted(self.store.items())
                if k == kind and (namespace is None or ns == namespace)
                and (not selector or _matches(obj["metadata"].get("labels") or {}, selector))
            ]

    def _maybe_fail(self, method: str) -> None:
        error = self.fail.pop(method, None)
        if error is not None:
            raise error

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        with self.cond:
            obj = self.store.get((kind, namespace, name))
            if obj is None:
                raise NotFound(f"{kind} {namespace}/{name} not found")
            return copy.deepcopy(obj)

    # --- namespaces -----------------------------------------------------------------

    def read_namespace(self, name: str) -> NamespaceRecord:
        self._maybe_fail("read_namespace")
        with self.cond:
            if name not in self.namespaces:
                raise NotFound(f'read namespace {name}: not found: namespaces "{name}" not found')
            return convert.namespace_from_json(self.namespaces[name])

    def create_namespace(self, name: str, labels: Mapping[str, str]) -> None:
        self.calls.append(("create_namespace", name, dict(labels)))
        self._maybe_fail("create_namespace")
        with self.cond:
            if name in self.namespaces:
                raise ClusterError(f"create namespace {name}: HTTP 409: namespaces \"{name}\" already exists")
            self.namespaces[name] = {"metadata": {"name": name, "labels": dict(labels)}, "status": {"phase": "Active"}}

    def delete_namespace(self, name: str) -> None:
        self.calls.append(("delete_namespace", name))
        self._maybe_fail("delete_namespace")
        with self.cond:
            if name not in self.namespaces:
                raise NotFound(f"namespace {name} not found")
            self.namespaces[name]["status"]["phase"] = "Terminating"
            for kind, namespace, obj_name in list(self.store):
                if namespace == name:
                    obj = self.store[(kind, namespace, obj_name)]
                    if kind in ("pods", "endpointslices", "events"):
                        self._record(kind, name, "DELETED", copy.deepcopy(obj))
                    else:
                        del self.store[(kind, namespace, obj_name)]
            del self.namespaces[name]

    # --- workload objects -----------------------------------------------------------

    def create_object(self, namespace: str, body: Mapping[str, Any]) -> None:
        kind = body["kind"]
        name = body["metadata"]["name"]
        self.calls.append(("create_object", namespace, kind, name))
        self._maybe_fail(f"create_{kind}")
        with self.cond:
            if namespace not in self.namespaces:
                raise NotFound(f'create {kind}: namespaces "{namespace}" not found')
            key = (kind, namespace, name)
            if key in self.store:
                raise ClusterError(f'create {kind} {namespace}/{name}: HTTP 409: {kind} "{name}" already exists')
            obj = copy.deepcopy(dict(body))
            obj["metadata"]["namespace"] = namespace
            obj["metadata"]["creationTimestamp"] = rfc3339(self.clock())
            if kind == "Service":
                for port in obj["spec"].get("ports", []):
                    port.setdefault("nodePort", next(self._node_ports))
            if kind == "HorizontalPodAutoscaler":
                # The API server drops a created object's status; the controller writes it.
                obj["status"] = {"currentReplicas": 0, "desiredReplicas": 0}
                self._record(kind, namespace, "ADDED", obj)
            self.store[key] = obj
            if kind == "Deployment":
                for _ in range(obj["spec"].get("replicas", 1)):
                    self._spawn_pod(namespace, obj)
            if kind == "StatefulSet":
                self._reconcile_stateful_set(namespace, name)
            if kind == "Service":
                self._sync_slice(namespace)

    def has_resource_metrics(self) -> bool:
        return self.resource_metrics

    def delete_object(self, namespace: str, kind: str, name: str) -> None:
        self.calls.append(("delete_object", namespace, kind, name))
        with self.cond:
            if self.store.pop((kind, namespace, name), None) is None:
                raise NotFound(f"{kind} {namespace}/{name} not found")
            if kind in ("Deployment", "StatefulSet"):
                for pod in self._items("pods", namespace):
                    if pod["metadata"].get("labels", {}).get("chaoslab-fake/deployment") == name:
                        self._remove_pod(namespace, pod["metadata"]["name"], 0, replace=False)

    # --- StatefulSets and their claims ------------------------------------------------

    def _reconcile_stateful_set(self, namespace: str, name: str) -> None:
        """Pods `<name>-<k>` for k < replicas (all at once: the fake pods are Ready at
        once), a claim per template and ordinal before its pod, surplus pods removed."""
        obj = self.store[("StatefulSet", namespace, name)]
        want = obj["spec"].get("replicas", 1)
        existing = {p["metadata"]["name"] for p in self._deployment_pods(namespace, name)}
        for ordinal in range(want):
            pod_name = f"{name}-{ordinal}"
            for template in obj["spec"].get("volumeClaimTemplates") or ():
                claim = f"{template['metadata']['name']}-{pod_name}"
                self.store.setdefault(
                    ("PersistentVolumeClaim", namespace, claim),
                    {"metadata": {"name": claim, "namespace": namespace, "labels": dict(obj["spec"]["selector"]["matchLabels"])}, "spec": copy.deepcopy(template["spec"])},
                )
            if pod_name not in existing:
                self._spawn_pod(namespace, obj, name=pod_name)
        for pod_name in sorted(existing, reverse=True):
            if int(pod_name.rsplit("-", 1)[1]) >= want:
                self._remove_pod(namespace, pod_name, None, replace=False)

    def read_stateful_set(self, namespace: str, name: str) -> DeploymentRecord:
        with self.cond:
            obj = self.get("StatefulSet", namespace, name)
            pods = [p for p in self._deployment_pods(namespace, name) if not p["metadata"].get("deletionTimestamp")]
            ready = sum(1 for p in pods if _pod_ready(p))
            obj["metadata"]["generation"] = 1
            obj["status"] = {"observedGeneration": 1, "replicas": len(pods), "updatedReplicas": len(pods), "readyReplicas": ready, "availableReplicas": ready}
            return convert.deployment_from_json(obj)

    def patch_stateful_set_scale(self, namespace: str, name: str, replicas: int) -> None:
        self.calls.append(("scale", namespace, name, replicas))
        with self.cond:
            self.store[("StatefulSet", namespace, name)]["spec"]["replicas"] = replicas
            self._reconcile_stateful_set(namespace, name)

    def list_claims(self, namespace: str, label_selector: str = "") -> tuple[str, ...]:
        with self.cond:
            return tuple(sorted(
                obj["metadata"]["name"] for (kind, ns, _), obj in self.store.items()
                if kind == "PersistentVolumeClaim" and ns == namespace and _matches(obj["metadata"].get("labels", {}), label_selector)
            ))

    def default_storage_class(self) -> str | None:
        return next((name for name, default in self.storage_classes.items() if default), None)

    def _deployment(self, namespace: str, name: str) -> dict[str, Any]:
        return self.get("Deployment", namespace, name)

    def read_deployment(self, namespace: str, name: str) -> DeploymentRecord:
        self._maybe_fail("read_deployment")
        with self.cond:
            obj = self._deployment(namespace, name)
            pods = [p for p in self._deployment_pods(namespace, name) if not p["metadata"].get("deletionTimestamp")]
            ready = sum(1 for p in pods if _pod_ready(p))
            obj["metadata"]["generation"] = 1
            obj["status"] = {
                "observedGeneration": 1,
                "replicas": len(pods),
                "updatedReplicas": len(pods),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "conditions": obj.get("status", {}).get("conditions", []),
            }
            return convert.deployment_from_json(obj)

    def patch_deployment_scale(self, namespace: str, name: str, replicas: int) -> None:
        self.calls.append(("scale", namespace, name, replicas))
        with self.cond:
            obj = self.store[("Deployment", namespace, name)]
            obj["spec"]["replicas"] = replicas
            self._reconcile(namespace, name)

    def read_service(self, namespace: str, name: str) -> ServiceRecord:
        return convert.service_from_json(self.get("Service", namespace, name))

    # --- pods -----------------------------------------------------------------------

    def _deployment_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return [p for p in self._items("pods", namespace) if p["metadata"]["labels"].get("chaoslab-fake/deployment") == name]

    def _schedulable_node(self) -> str | None:
        nodes = self._items("nodes", None)
        counts: dict[str, int] = {}
        for pod in self._items("pods", None):
            node = pod["spec"].get("nodeName")
            if node:
                counts[node] = counts.get(node, 0) + 1
        usable = [
            n for n in nodes
            if not n["spec"].get("unschedulable")
            and _node_ready(n) == "True"
        ]
        workers = [n for n in usable if CONTROL_PLANE not in n["metadata"]["labels"]]
        pool = workers or usable
        if not pool:
            return None
        return min(pool, key=lambda n: (counts.get(n["metadata"]["name"], 0), n["metadata"]["name"]))["metadata"]["name"]

    def _spawn_pod(self, namespace: str, deployment: dict[str, Any], name: str | None = None) -> None:
        """A pod of a Deployment (generated name) or of a StatefulSet (`name`, its ordinal's)."""
        now = self.clock()
        template = deployment["spec"]["template"]
        labels = {**template["metadata"]["labels"], "chaoslab-fake/deployment": deployment["metadata"]["name"]}
        if name is None:
            name = f"{deployment['metadata']['name']}-7d9f8c6b5-{next(self._names):05d}"
            labels["pod-template-hash"] = "7d9f8c6b5"
        else:
            labels["statefulset.kubernetes.io/pod-name"] = name
        containers = template["spec"]["containers"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": f"uid-{name}",
                "labels": labels,
                "creationTimestamp": rfc3339(now),
                "ownerReferences": [{"kind": "ReplicaSet", "name": f"{deployment['metadata']['name']}-7d9f8c6b5"}],
            },
            "spec": copy.deepcopy(template["spec"]),
            "status": {"phase": "Pending", "conditions": []},
        }
        self._record("pods", namespace, "ADDED", pod)
        node = self._schedulable_node()
        pod = copy.deepcopy(pod)
        if node is None:
            pod["status"]["conditions"] = [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": "0/3 nodes are available: 3 node(s) were unschedulable.", "lastTransitionTime": rfc3339(now)}
            ]
            self._record("pods", namespace, "MODIFIED", pod)
            return
        pod["spec"]["nodeName"] = node
        pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": rfc3339(now)}]
        self._record("pods", namespace, "MODIFIED", pod)
        pod = copy.deepcopy(pod)
        ip = f"10.244.{sum(map(ord, node)) % 250}.{next(self._names) % 250 + 2}"
        pod["status"].update(
            {
                "phase": "Running",
                "podIP": ip,
                "hostIP": "192.168.49.3",
                "startTime": rfc3339(now),
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": rfc3339(now)},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": rfc3339(now)},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": rfc3339(now)},
                    {"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(now)},
                ],
                "containerStatuses": [
                    {
                        "name": c["name"],
                        "image": c["image"],
                        "ready": True,
                        "restartCount": 0,
                        "started": True,
                        "state": {"running": {"startedAt": rfc3339(now)}},
                    }
                    for c in containers
                ],
            }
        )
        self._record("pods", namespace, "MODIFIED", pod)
        self._event(namespace, pod, "Started", "Started container app")
        self._sync_slice(namespace)

    def _event(self, namespace: str, pod: dict[str, Any], reason: str, message: str, type_: str = "Normal") -> None:
        name = f"{pod['metadata']['name']}.{next(self._names):x}"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": rfc3339(self.clock())},
            "involvedObject": {"kind": "Pod", "name": pod["metadata"]["name"], "namespace": namespace},
            "reason": reason,
            "message": message,
            "type": type_,
            "count": 1,
            "firstTimestamp": rfc3339(self.clock()),
            "lastTimestamp": rfc3339(self.clock()),
        }
        self._record("events", namespace, "ADDED", event)

    def _remove_pod(self, namespace: str, name: str, grace: int | None, *, replace: bool, condition: dict[str, Any] | None = None) -> None:
        pod = self.get("pods", namespace, name)
        now = self.clock()
        grace_seconds = pod["spec"].get("terminationGracePeriodSeconds", 30) if grace is None else grace
        if condition is not None:
            pod["status"]["conditions"].append(condition)
        pod["metadata"]["deletionTimestamp"] = rfc3339(now + grace_seconds)
        pod["metadata"]["deletionGracePeriodSeconds"] = grace_seconds
        for c in pod["status"].get("conditions", []):
            if c["type"] in ("Ready", "ContainersReady"):
                c["status"], c["lastTransitionTime"] = "False", rfc3339(now)
        self._record("pods", namespace, "MODIFIED", pod)
        self._sync_slice(namespace)
        self._record("pods", namespace, "DELETED", copy.deepcopy(pod))
        if replace and self.replace_pods:
            deployment = pod["metadata"]["labels"].get("chaoslab-fake/deployment")
            if deployment and ("Deployment", namespace, deployment) in self.store:
                self._reconcile(namespace, deployment)
            if deployment and ("StatefulSet", namespace, deployment) in self.store:
                self._reconcile_stateful_set(namespace, deployment)

    def _reconcile(self, namespace: str, deployment: str) -> None:
        obj = self.store[("Deployment", namespace, deployment)]
        pods = [p for p in self._deployment_pods(namespace, deployment) if not p["metadata"].get("deletionTimestamp")]
        want = obj["spec"].get("replicas", 1)
        for _ in range(want - len(pods)):
            self._spawn_pod(namespace, obj)
        for pod in sorted(pods, key=lambda p: p["metadata"]["name"], reverse=True)[: max(0, len(pods) - want)]:
            self._remove_pod(namespace, pod["metadata"]["name"], None, replace=False)

    def list_pods(self, namespace: str, label_selector: str = "") -> Listing:
        self._maybe_fail("list_pods")
        with self.cond:
            return Listing(tuple(convert.pod_from_json(p) for p in self._items("pods", namespace, label_selector)), str(self.rv))

    def delete_pod(self, namespace: str, name: str, grace_period_seconds: int | None) -> None:
        self.calls.append(("delete_pod", namespace, name, grace_period_seconds))
        with self.cond:
            self._remove_pod(namespace, name, grace_period_seconds, replace=True)

    def evict_pod(self, namespace: str, name: str, grace_period_seconds: int | None) -> None:
        self.calls.append(("evict_pod", namespace, name, grace_period_seconds))
        with self.cond:
            pod = self.get("pods", namespace, name)
            for (kind, ns, _), budget in list(self.store.items()):
                if kind != "PodDisruptionBudget" or ns != namespace:
                    continue
                selector = budget["spec"]["selector"]["matchLabels"]
                if not all(pod["metadata"]["labels"].get(k) == v for k, v in selector.items()):
                    continue
                healthy = sum(
                    1 for p in self._items("pods", namespace)
                    if _pod_ready(p) and not p["metadata"].get("deletionTimestamp")
                    and all(p["metadata"]["labels"].get(k) == v for k, v in selector.items())
                )
                minimum = budget["spec"].get("minAvailable")
                if minimum is not None and healthy - 1 < int(minimum):
                    raise EvictionBlocked(
                        f"evict pod {namespace}/{name}: Cannot evict pod as it would violate the pod's disruption budget."
                    )
            condition = {
                "type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting", "lastTransitionTime": rfc3339(self.clock()),
            }
            self._remove_pod(namespace, name, grace_period_seconds, replace=True, condition=condition)

    def exec_in_container(self, namespace: str, pod: str, container: str, command: list[str], timeout: float) -> ExecResult:
        self.calls.append(("exec", namespace, pod, container, tuple(command)))
        self.get("pods", namespace, pod)
        return self.exec_handler(namespace, pod, container, command)

    # --- nodes ----------------------------------------------------------------------

    def list_nodes(self) -> Listing:
        self._maybe_fail("list_nodes")
        with self.cond:
            return Listing(tuple(convert.node_from_json(n) for n in self._items("nodes", None)), str(self.rv))

    def set_node_unschedulable(self, name: str, unschedulable: bool) -> None:
        self.calls.append(("cordon" if unschedulable else "uncordon", name))
        self._maybe_fail("set_node_unschedulable")
        with self.cond:
            node = self.get("nodes", "", name)
            node["spec"]["unschedulable"] = unschedulable
            taints = [t for t in node["spec"].get("taints", []) if t["key"] != "node.kubernetes.io/unschedulable"]
            if unschedulable:
                taints.append({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": rfc3339(self.clock())})
            node["spec"]["taints"] = taints
            self._record("nodes", "", "MODIFIED", node)

    def set_node_ready(self, name: str, status: str) -> None:
        """What the node lifecycle controller does when heartbeats stop (or resume)."""
        with self.cond:
            node = self.get("nodes", "", name)
            now = self.clock()
            for condition in node["status"]["conditions"]:
                if condition["type"] == "Ready":
                    condition.update(
                        status=status,
                        reason="KubeletReady" if status == "True" else "NodeStatusUnknown",
                        lastTransitionTime=rfc3339(now),
                    )
            taints = [t for t in node["spec"].get("taints", []) if t["key"] != "node.kubernetes.io/unreachable"]
            if status != "True":
                taints.append({"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": rfc3339(now)})
            node["spec"]["taints"] = taints
            self._record("nodes", "", "MODIFIED", node)

    # --- endpoints and events -------------------------------------------------------

    def _sync_slice(self, namespace: str) -> None:
        for (kind, ns, name), service in list(self.store.items()):
            if kind != "Service" or ns != namespace:
                continue
            selector = service["spec"].get("selector") or {}
            endpoints = []
            for pod in self._items("pods", namespace):
                if not all(pod["metadata"]["labels"].get(k) == v for k, v in selector.items()):
                    continue
                if not pod["status"].get("podIP"):
                    continue
                terminating = bool(pod["metadata"].get("deletionTimestamp"))
                endpoints.append(
                    {
                        "addresses": [pod["status"]["podIP"]],
                        "conditions": {"ready": _pod_ready(pod) and not terminating, "serving": _pod_ready(pod), "terminating": terminating},
                        "nodeName": pod["spec"].get("nodeName"),
                        "targetRef": {"kind": "Pod", "name": pod["metadata"]["name"], "namespace": namespace},
                    }
                )
            slice_name = f"{name}-x7k2p"
            body = {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": slice_name,
                    "namespace": namespace,
                    "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                },
                "addressType": "IPv4",
                "endpoints": endpoints,
                "ports": [{"name": "http", "port": service["spec"]["ports"][0]["targetPort"], "protocol": "TCP"}],
            }
            existing = self.store.get(("endpointslices", namespace, slice_name))
            if existing is not None and existing.get("endpoints") == endpoints:
                continue
            self._record("endpointslices", namespace, "ADDED" if existing is None else "MODIFIED", body)

    def list_endpoint_slices(self, namespace: str, label_selector: str = "") -> Listing:
        with self.cond:
            items = self._items("endpointslices", namespace, label_selector)
            return Listing(tuple(convert.endpoint_slice_from_json(s) for s in items), str(self.rv))

    def list_events(self, namespace: str, field_selector: str = "") -> Listing:
        with self.cond:
            items = self._items("events", namespace)
            if field_selector.startswith("involvedObject.name="):
                wanted = field_selector.split("=", 1)[1]
                items = [e for e in items if e["involvedObject"]["name"] == wanted]
            return Listing(tuple(convert.event_from_json(e) for e in items), str(self.rv))

    # --- autoscalers -----------------------------------------------------------------

    def list_autoscalers(self, namespace: str) -> Listing:
        self._maybe_fail("list_autoscalers")
        with self.cond:
            items = self._items("HorizontalPodAutoscaler", namespace)
            return Listing(tuple(convert.autoscaler_from_json(h) for h in items), str(self.rv))

    def evaluate_autoscaler(
        self,
        namespace: str,
        name: str,
        *,
        desired: int | None,
        utilization: int | None,
        average_value: str = "",
        limited: str = "DesiredWithinRange",
        able: str = "ReadyForNewScale",
    ) -> None:
        """One sync of kube-controller-manager's HPA controller, as reconcileAutoscaler writes it.

        desired None: the metric could not be read (ScalingActive=False
        FailedGetResourceMetric, desiredReplicas left as it was, nothing scaled). Otherwise
        the target's spec.replicas becomes `desired` (with lastScaleTime, AbleToScale
        SucceededRescale and a SuccessfulRescale Event when it changed). `limited` is the
        ScalingLimited reason (True unless DesiredWithinRange); `able` AbleToScale's when
        nothing was scaled (ReadyForNewScale, ScaleDownStabilized, ...).
        """
        with self.cond:
            hpa = self.get("HorizontalPodAutoscaler", namespace, name)
            target = hpa["spec"]["scaleTargetRef"]["name"]
            current = self.store[("Deployment", namespace, target)]["spec"].get("replicas", 1)
            now = rfc3339(self.clock())
            status = hpa.get("status") or {}
            conditions = {c["type"]: c for c in status.get("conditions") or ()}

            def condition(type_: str, state: str, reason: str) -> None:
                before = conditions.get(type_)
                moved = before is None or before["status"] != state
                conditions[type_] = {
                    "type": type_, "status": state, "reason": reason, "message": reason,
                    "lastTransitionTime": now if moved else before["lastTransitionTime"],
                }

            condition("AbleToScale", "True", "SucceededGetScale")
            status["currentReplicas"] = current
            if desired is None:
                condition("ScalingActive", "False", "FailedGetResourceMetric")
                status.pop("currentMetrics", None)
            else:
                condition("ScalingActive", "True", "ValidMetricFound")
                condition("ScalingLimited", "False" if limited == "DesiredWithinRange" else "True", limited)
                current_metric: dict[str, Any] = {"averageValue": average_value or f"{utilization}m"}
                if utilization is not None:
                    current_metric["averageUtilization"] = utilization
                status["currentMetrics"] = [{"type": "Resource", "resource": {"name": "cpu", "current": current_metric}}]
                status["desiredReplicas"] = desired
                if desired != current:
                    condition("AbleToScale", "True", "SucceededRescale")
                    status["lastScaleTime"] = now
                else:
                    condition("AbleToScale", "True", able)
            status["conditions"] = list(conditions.values())
            hpa["status"] = status
            self._record("HorizontalPodAutoscaler", namespace, "MODIFIED", hpa)
            if desired is not None and desired != current:
                # Through the scale subresource, by the controller: not one of chaoslab's calls.
                self.store[("Deployment", namespace, target)]["spec"]["replicas"] = desired
                self._reconcile(namespace, target)
                self._hpa_event(namespace, name, f"New size: {desired}; reason: cpu resource utilization (percentage of request) above target")

    def _hpa_event(self, namespace: str, name: str, message: str) -> None:
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{next(self._names):x}", "namespace": namespace, "creationTimestamp": rfc3339(self.clock())},
            "involvedObject": {"kind": "HorizontalPodAutoscaler", "name": name, "namespace": namespace},
            "reason": "SuccessfulRescale",
            "message": message,
            "type": "Normal",
            "count": 1,
            "lastTimestamp": rfc3339(self.clock()),
        }
        self._record("events", namespace, "ADDED", event)

    def taint_manager_evict(self, namespace: str, pod: str) -> None:
        """The taint manager's eviction: an Event, then the pod's deletion."""
        with self.cond:
            obj = self.get("pods", namespace, pod)
            self._event(namespace, obj, "TaintManagerEviction", f"Marking for deletion Pod {namespace}/{pod}")
            self._remove_pod(namespace, pod, None, replace=True)

    # --- watches --------------------------------------------------------------------

    def watch(self, kind: str, namespace: str | None, resource_version: str, *, label_selector: str = "", timeout_seconds: int = 60) -> FakeWatch:
        self.calls.append(("watch", kind, namespace, resource_version))
        with self.cond:
            if int(resource_version) < self.compacted:
                raise WatchExpired(f"watch {kind}: too old resource version: {resource_version} ({self.compacted}) (410 Gone)")
            stream = FakeWatch(self, WATCHED_KINDS.get(kind, kind), namespace, int(resource_version), label_selector, timeout_seconds)
            self.watches.append(stream)
            return stream

    def close(self) -> None:
        self.closed = True
        with self.cond:
            for watch in self.watches:
                watch.closed = True
            self.cond.notify_all()


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def _node_ready(node: Mapping[str, Any]) -> str:
    return next((c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"), "Unknown")


class RecordingProvider:
    """A node provider that records what it was asked to do (the docker one is tested
    against real containers in test_docker_nodeprovider.py); with `api` it also plays
    the node lifecycle controller: a crashed or hung node turns NotReady."""

    name = "recording"

    def __init__(self, api: FakeKubeApi | None = None) -> None:
        self.api = api
        self.calls: list[tuple[str, str]] = []
        self.states: dict[str, str] = {}

    def crash(self, node: str) -> None:
        self._act("crash", node, state="stopped", ready="Unknown")

    def hang(self, node: str) -> None:
        self._act("hang", node, state="paused", ready="Unknown")

    def restore(self, node: str) -> None:
        self._act("restore", node, state="running", ready="True")

    def _act(self, call: str, node: str, *, state: str, ready: str) -> None:
        """Record the call; the node's container state and, with an API, its Ready condition."""
        self.calls.append((call, node))
        self.states[node] = state
        if self.api is not None:
            self.api.set_node_ready(node, ready)

    def state(self, node: str) -> str:
        return self.states.get(node, "running")

    def describe(self, node: str) -> str:
        return f"recording provider for {node}"
