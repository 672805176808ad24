"""The Kubernetes objects a workload becomes: generated from the spec, or the user's own.

Why it exists: the same `workload:` block must mean the same thing on sim and on a real
cluster. The spec's fields are Kubernetes' own (probes, tolerationSeconds,
terminationGracePeriodSeconds), so the generated Deployment, Service, ConfigMap and
PodDisruptionBudget are a direct translation; this module does it as pure functions
returning JSON-shaped bodies, which tests can read field by field.

The built-in app (`image: chaoslab/echo`) runs on a real cluster as the very file the
simulator runs, `chaoslab/cluster/sim/app.py`, mounted from a ConfigMap into a public
Python image, configured by the same environment variables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from chaoslab.cluster.kube.safety import MANAGED_BY_LABEL, MANAGED_BY_VALUE
from chaoslab.errors import UsageError
from chaoslab.spec import VOLUME_CLAIM, VOLUME_EMPTY_DIR, ProbeSpec, WorkloadSpec

BUILT_IN_IMAGE = "chaoslab/echo"
# The built-in stateful app: kv.py beside app.py (it imports app's server) in the ConfigMap.
KV_IMAGE = "chaoslab/kv"
# Where the ConfigMap with app.py is mounted in the container, and the key it uses.
APP_MOUNT_PATH = "/app"
APP_FILE = "app.py"
KV_FILE = "kv.py"
# The label the StatefulSet controller puts on each of its pods (k8s.io/api/apps/v1
# StatefulSetPodNameLabel); a per-ordinal Service selects one pod by it.
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
CONTAINER_NAME = "app"
# Taints the node lifecycle controller puts on a NotReady / unreachable node; the
# DefaultTolerationSeconds admission plugin gives every pod 300 s tolerations for them.
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
# Kinds a user manifest may contain; all are namespaced and deleted with the namespace.
SUPPORTED_KINDS = ("Deployment", "Service", "ConfigMap", "Secret", "ServiceAccount", "PodDisruptionBudget")


@dataclass(frozen=True)
class WorkloadObjects:
    """What `deploy` creates, in creation order, and how to find the workload again."""

    objects: tuple[Mapping[str, Any], ...]
    deployment: str
    service: str
    selector: Mapping[str, str]
    container: str  # the container faults (container-kill) act on
    image: str
    port: int
    replicas: int
    built_in: bool
    # Whether the container is known to have /bin/sh (container-kill needs it); None: unknown.
    has_shell: bool | None = None
    owned: tuple[tuple[str, str], ...] = field(default=())  # (kind, name) of every object
    kind: str = "Deployment"  # or StatefulSet (the `deployment` field names it either way)
    # StatefulSet: the per-ordinal Service of each pod, by ordinal; the claims it will make.
    ordinal_services: tuple[str, ...] = ()
    claims: tuple[str, ...] = ()

    @property
    def label_selector(self) -> str:
        return ",".join(f"{key}={value}" for key, value in sorted(self.selector.items()))


def standard_labels(name: str) -> dict[str, str]:
    """The app.kubernetes.io/* labels on everything chaoslab creates for a workload."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": "workload",
        "app.kubernetes.io/part-of": "chaoslab",
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
    }


def selector_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}


def probe_body(probe: ProbeSpec, port: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": probe.http_get.path, "port": probe.http_get.port or port},
        "initialDelaySeconds": probe.initial_delay_seconds,
        "periodSeconds": probe.period_seconds,
        "timeoutSeconds": probe.timeout_seconds,
        "successThreshold": probe.success_threshold,
        "failureThreshold": probe.failure_threshold,
    }


def tolerations(seconds: int | None) -> list[dict[str, Any]]:
    """NoExecute tolerations for a lost node; without seconds the pod stays forever."""
    result = []
    for key in (NOT_READY_TAINT, UNREACHABLE_TAINT):
        toleration: dict[str, Any] = {"key": key, "operator": "Exists", "effect": "NoExecute"}
        if seconds is not None:
            toleration["tolerationSeconds"] = seconds
        result.append(toleration)
    return result


def _app_env(workload: WorkloadSpec) -> list[dict[str, Any]]:
    knobs = workload.app
    values = {
        "HOST": "0.0.0.0",  # the app binds loopback by default (sim); a pod must listen on its IP
        "PORT": str(workload.port),
        "PYTHONUNBUFFERED": "1",
        "CHAOSLAB_LATENCY_MS": f"{knobs.latency_ms:g}",
        "CHAOSLAB_LATENCY_JITTER_MS": f"{knobs.latency_jitter_ms:g}",
        "CHAOSLAB_CPU_MS": f"{knobs.cpu_ms:g}",
        "CHAOSLAB_STARTUP_SECONDS": f"{knobs.startup_seconds:g}",
        "CHAOSLAB_READINESS_DELAY_SECONDS": f"{knobs.readiness_delay_seconds:g}",
        "CHAOSLAB_ERROR_RATE": f"{knobs.error_rate:g}",
        "CHAOSLAB_REPLAY_MS_PER_WRITE": f"{knobs.replay_ms_per_write:g}",
    }
    if workload.volume is not None:
        values["CHAOSLAB_DATA_DIR"] = workload.volume.mount_path
    env: list[dict[str, Any]] = [{"name": key, "value": value} for key, value in values.items()]
    env += [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ]
    return env


def _resources(workload: WorkloadSpec) -> dict[str, Any] | None:
    if workload.resources is None:
        return None
    result: dict[str, Any] = {}
    for part in ("requests", "limits"):
        values = getattr(workload.resources, part)
        given = {k: v for k, v in (("cpu", values.cpu), ("memory", values.memory)) if v is not None}
        if given:
            result[part] = given
    return result or None


def generated_objects(
    workload: WorkloadSpec, *, python_image: str, app_source: str, kv_source: str = ""
) -> WorkloadObjects:
    """Deployment (or StatefulSet) + Service (+ ConfigMap for the built-in apps, + PDB
    when asked for; a StatefulSet also gets its headless Service and a Service per ordinal)."""
    name = workload.name
    labels = standard_labels(name)
    selector = selector_labels(name)
    kv = workload.image == KV_IMAGE
    built_in = workload.image == BUILT_IN_IMAGE or kv
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": python_image if built_in else workload.image,
        "ports": [{"name": "http", "containerPort": workload.port, "protocol": "TCP"}],
    }
    env = _app_env(workload) if built_in else []
    env += [{"name": e.name, "value": e.value} for e in workload.env]
    if env:
        container["env"] = env
    if workload.command is not None:
        container["command"] = list(workload.command)
    elif built_in:
        container["command"] = ["python", f"{APP_MOUNT_PATH}/{KV_FILE if kv else APP_FILE}"]
    if workload.args is not None:
        container["args"] = list(workload.args)
    if workload.readiness_probe is not None:
        container["readinessProbe"] = probe_body(workload.readiness_probe, workload.port)
    if workload.liveness_probe is not None:
        container["livenessProbe"] = probe_body(workload.liveness_probe, workload.port)
    resources = _resources(workload)
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "terminationGracePeriodSeconds": workload.termination_grace_period_seconds,
        "tolerations": tolerations(workload.toleration_seconds),
        # Prefer workers: node faults never touch control-plane nodes, so pods there
        # would dodge every node experiment. Only preferred, so a one-node cluster works.
        "affinity": {
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "preference": {
                            "matchExpressions": [{"key": CONTROL_PLANE_LABEL, "operator": "DoesNotExist"}]
                        },
                    }
                ]
            }
        },
    }
    objects: list[Mapping[str, Any]] = []
    config_map_name = f"{name}-app"
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    if built_in:
        mounts.append({"name": "app", "mountPath": APP_MOUNT_PATH, "readOnly": True})
        volumes.append({"name": "app", "configMap": {"name": config_map_name}})
    data = workload.volume
    if data is not None:
        mounts.append({"name": data.name, "mountPath": data.mount_path})
        if data.type == VOLUME_EMPTY_DIR:
            volumes.append({"name": data.name, "emptyDir": {}})
    if mounts:
        container["volumeMounts"] = mounts
    if volumes:
        pod_spec["volumes"] = volumes
    if built_in:
        # The app must not be PID 1 of its PID namespace: the kernel drops SIGKILL (and
        # unhandled signals) sent to a namespace's init from inside it, so container-kill's
        # `kubectl exec ... kill` could not reach it. With a shared PID namespace the pause
        # container is init and the app a plain process, as it is to a runtime's kill.
        pod_spec["shareProcessNamespace"] = True
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": config_map_name, "labels": labels},
                "data": {APP_FILE: app_source, **({KV_FILE: kv_source} if kv else {})},
            }
        )
    template = {"metadata": {"labels": labels}, "spec": pod_spec}
    stateful: StatefulObjects | None = None
    if workload.stateful:
        stateful = statefulset_objects(workload, labels, selector, template)
        objects += stateful.objects
    else:
        objects.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "labels": labels},
                "spec": {"replicas": workload.replicas, "selector": {"matchLabels": selector}, "template": template},
            }
        )
    objects.append(_service_body(name, labels, selector, workload.port))
    if stateful is not None:
        objects += stateful.services
    if workload.pod_disruption_budget is not None:
        budget = workload.pod_disruption_budget
        pdb_spec: dict[str, Any] = {"selector": {"matchLabels": selector}}
        if budget.min_available is not None:
            pdb_spec["minAvailable"] = budget.min_available
        else:
            pdb_spec["maxUnavailable"] = budget.max_unavailable
        objects.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": name, "labels": labels},
                "spec": pdb_spec,
            }
        )
    return WorkloadObjects(
        objects=tuple(objects),
        deployment=name,
        service=name,
        selector=selector,
        container=CONTAINER_NAME,
        image=str(container["image"]),
        port=workload.port,
        replicas=workload.replicas,
        built_in=built_in,
        has_shell=True if built_in else None,  # the Python image is Debian with /bin/sh
        owned=tuple((str(o["kind"]), str(o["metadata"]["name"])) for o in objects),
        kind="StatefulSet" if stateful is not None else "Deployment",
        ordinal_services=stateful.ordinal_services if stateful is not None else (),
        claims=stateful.claims if stateful is not None else (),
    )


@dataclass(frozen=True)
class StatefulObjects:
    objects: tuple[Mapping[str, Any], ...]  # the headless Service, then the StatefulSet
    services: tuple[Mapping[str, Any], ...]  # one NodePort Service per ordinal
    ordinal_services: tuple[str, ...]
    claims: tuple[str, ...]


def statefulset_objects(
    workload: WorkloadSpec, labels: Mapping[str, str], selector: Mapping[str, str], template: Mapping[str, Any]
) -> StatefulObjects:
    """A StatefulSet, the headless Service that governs it (spec.serviceName: each pod gets
    `<pod>.<service>` in DNS), and a NodePort Service per ordinal selecting
    `statefulset.kubernetes.io/pod-name`, the standard way to reach one pod from outside."""
    name = workload.name
    headless = f"{name}-headless"
    spec: dict[str, Any] = {
        "replicas": workload.replicas,
        "serviceName": headless,
        "podManagementPolicy": workload.effective_pod_management_policy(),
        "selector": {"matchLabels": dict(selector)},
        "template": template,
    }
    claims: tuple[str, ...] = ()
    volume = workload.volume
    if volume is not None and volume.type == VOLUME_CLAIM:
        claim_spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": volume.size}},
        }
        if volume.storage_class_name is not None:
            claim_spec["storageClassName"] = volume.storage_class_name  # else: the default class
        spec["volumeClaimTemplates"] = [{"metadata": {"name": volume.name, "labels": dict(labels)}, "spec": claim_spec}]
        claims = tuple(f"{volume.name}-{pod}" for pod in workload.ordinal_names())
    headless_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": headless, "labels": dict(labels)},
        "spec": {
            "clusterIP": "None",
            "selector": dict(selector),
            "ports": [{"name": "http", "port": workload.port, "targetPort": workload.port, "protocol": "TCP"}],
        },
    }
    statefulset = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "labels": dict(labels)}, "spec": spec}
    pods = workload.ordinal_names()
    services = tuple(_service_body(pod, labels, {**selector, POD_NAME_LABEL: pod}, workload.port) for pod in pods)
    return StatefulObjects((headless_service, statefulset), services, tuple(pods), claims)


def _service_body(name: str, labels: Mapping[str, str], selector: Mapping[str, str], port: int) -> dict[str, Any]:
    # NodePort, so the load generator outside the cluster can reach it on any node's
    # address (minikube and kind have no LoadBalancer without extra tooling).
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "type": "NodePort",
            "selector": dict(selector),
            "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }


def load_manifest_documents(paths: Sequence[str], base_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every YAML document of the manifest files, with the file it came from."""
    documents: list[tuple[str, dict[str, Any]]] = []
    for raw in paths:
        path = (base_dir / raw) if not Path(raw).is_absolute() else Path(raw)
        try:
            text = path.read_text()
        except OSError as exc:
            raise UsageError(
                f"workload.manifests: cannot read {path}: {exc.strerror or exc} "
                "(paths are relative to the experiment file's folder)"
            ) from exc
        try:
            loaded = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            raise UsageError(f"workload.manifests: {path} is not valid YAML: {exc}") from exc
        for document in loaded:
            if document is None:
                continue
            if not isinstance(document, dict) or "kind" not in document:
                raise UsageError(f"workload.manifests: {path}: every document must be a Kubernetes object with a kind")
            if document.get("kind") == "List":
                documents += [(str(path), item) for item in document.get("items") or ()]
            else:
                documents.append((str(path), document))
    return documents


def manifest_objects(workload: WorkloadSpec, documents: Sequence[tuple[str, dict[str, Any]]], namespace: str) -> WorkloadObjects:
    """The user's own objects, checked and labelled; a Service is added if none is given.

    The workload is the Deployment named `workload.name` (or the only Deployment). Objects
    may leave metadata.namespace out or set it to the run's namespace: faults touch only
    that namespace, so an object elsewhere is refused rather than silently moved.
    """
    objects: list[dict[str, Any]] = []
    for source, document in documents:
        kind = str(document.get("kind"))
        meta = dict(document.get("metadata") or {})
        name = meta.get("name")
        if kind not in SUPPORTED_KINDS:
            raise UsageError(
                f"workload.manifests: {source}: kind {kind} is not supported "
                f"(expected one of: {', '.join(SUPPORTED_KINDS)})"
            )
        if not name:
            raise UsageError(f"workload.manifests: {source}: a {kind} has no metadata.name")
        if meta.get("namespace") not in (None, namespace):
            raise UsageError(
                f"workload.manifests: {source}: {kind} {name} sets namespace {meta['namespace']!r}; "
                f"chaoslab deploys into the run's namespace ({namespace}): remove metadata.namespace "
                "or set cluster.kubernetes.namespace to it"
            )
        meta.pop("namespace", None)
        meta["labels"] = {**(meta.get("labels") or {}), MANAGED_BY_LABEL: MANAGED_BY_VALUE}
        objects.append({**document, "metadata": meta})
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    deployment = next((d for d in deployments if d["metadata"]["name"] == workload.name), None)
    if deployment is None and len(deployments) == 1:
        deployment = deployments[0]
    if deployment is None:
        found = ", ".join(d["metadata"]["name"] for d in deployments) or "none"
        raise UsageError(
            f"workload.manifests: expected one Deployment, or one named {workload.name!r} "
            f"(workload.name), found: {found}"
        )
    spec = deployment.get("spec") or {}
    selector = dict((spec.get("selector") or {}).get("matchLabels") or {})
    if not selector:
        raise UsageError(
            f"workload.manifests: Deployment {deployment['metadata']['name']} needs spec.selector.matchLabels "
            "(chaoslab finds its pods by them)"
        )
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    if not containers:
        raise UsageError(f"workload.manifests: Deployment {deployment['metadata']['name']} has no containers")
    first = containers[0]
    ports = first.get("ports") or []
    port = int(ports[0].get("containerPort", workload.port)) if ports else workload.port
    template_labels = dict(((spec.get("template") or {}).get("metadata") or {}).get("labels") or selector)
    services = [o for o in objects if o["kind"] == "Service"]
    service = next((s for s in services if _selects(s, template_labels)), None)
    if service is None:
        labels = {**standard_labels(workload.name), **selector}
        service = _service_body(str(deployment["metadata"]["name"]), labels, selector, port)
        objects.append(service)
    # workload.replicas wins over the manifest's, so a sweep over it works here too.
    deployment["spec"] = {**spec, "replicas": workload.replicas}
    return WorkloadObjects(
        objects=tuple(objects),
        deployment=str(deployment["metadata"]["name"]),
        service=str(service["metadata"]["name"]),
        selector=selector,
        container=str(first.get("name", "")),
        image=str(first.get("image", "")),
        port=port,
        replicas=workload.replicas,
        built_in=False,
        has_shell=None,
        owned=tuple((str(o["kind"]), str(o["metadata"]["name"])) for o in objects),
    )


def autoscaler_body(workload: WorkloadSpec, deployment: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """The workload's HorizontalPodAutoscaler (autoscaling/v2), field for field from the spec.

    Unset behaviour fields are left out, so the API server fills in its own defaults
    (and the controller its --horizontal-pod-autoscaler-downscale-stabilization).
    """
    scaling = workload.autoscaling
    assert scaling is not None
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
        "minReplicas": scaling.min_replicas,
        "maxReplicas": scaling.max_replicas,
        "metrics": [metric.model_dump(by_alias=True) for metric in scaling.metrics],
    }
    behavior = scaling.behavior.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True)
    if behavior:
        spec["behavior"] = behavior
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": deployment, "labels": dict(labels)},
        "spec": spec,
    }


def with_autoscaler(objects: WorkloadObjects, workload: WorkloadSpec) -> WorkloadObjects:
    """`objects` plus the HPA when the workload has `autoscaling` (created after the Deployment)."""
    if workload.autoscaling is None:
        return objects
    labels = standard_labels(workload.name)
    body = autoscaler_body(workload, objects.deployment, labels)
    return replace(objects, objects=(*objects.objects, body), owned=(*objects.owned, ("HorizontalPodAutoscaler", objects.deployment)))


def _selects(service: Mapping[str, Any], pod_labels: Mapping[str, str]) -> bool:
    selector = (service.get("spec") or {}).get("selector") or {}
    return bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items())
