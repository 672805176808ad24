"""Kubernetes JSON (as the API server sends it) to the records of `records.py`.

Why it exists apart from the client: the conversion is plain data in, plain data out, so
it is the same for every version of the `kubernetes` package (the wrapper asks it for
raw JSON) and tests can feed it objects exactly as `kubectl get -o json` prints them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chaoslab.cluster.kube.records import (
    AutoscalerRecord,
    Condition,
    ContainerSpec,
    ContainerStatus,
    DeploymentRecord,
    Endpoint,
    EndpointSliceRecord,
    EventRecord,
    NamespaceRecord,
    NodeRecord,
    PodRecord,
    ServicePort,
    ServiceRecord,
    Taint,
)

Json = Mapping[str, Any]


def parse_time(value: object) -> float | None:
    """Epoch seconds from an RFC 3339 time (`2026-11-27T11:15:00Z`, with or without
    fractional seconds, as metav1.Time and metav1.MicroTime serialise), None if absent."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _meta(obj: Json) -> Json:
    return obj.get("metadata") or {}


def _labels(obj: Json) -> dict[str, str]:
    return dict(_meta(obj).get("labels") or {})


def _conditions(status: Json) -> tuple[Condition, ...]:
    return tuple(
        Condition(
            type=str(c.get("type", "")),
            status=str(c.get("status", "Unknown")),
            reason=str(c.get("reason") or ""),
            message=str(c.get("message") or ""),
            last_transition=parse_time(c.get("lastTransitionTime")),
        )
        for c in status.get("conditions") or ()
    )


def _container_status(raw: Json) -> ContainerStatus:
    state = raw.get("state") or {}
    last = (raw.get("lastState") or {}).get("terminated") or {}
    kind = next((k for k in ("running", "terminated", "waiting") if state.get(k) is not None), "")
    detail = state.get(kind) or {}
    return ContainerStatus(
        name=str(raw.get("name", "")),
        ready=bool(raw.get("ready", False)),
        restart_count=int(raw.get("restartCount") or 0),
        state=kind,  # type: ignore[arg-type]
        reason=str(detail.get("reason") or ""),
        message=str(detail.get("message") or ""),
        started_at=parse_time(detail.get("startedAt")),
        finished_at=parse_time(detail.get("finishedAt")),
        exit_code=detail.get("exitCode"),
        signal=detail.get("signal"),
        last_exit_code=last.get("exitCode"),
        last_reason=str(last.get("reason") or ""),
        last_finished_at=parse_time(last.get("finishedAt")),
    )


def pod_from_json(obj: Json) -> PodRecord:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    containers = spec.get("containers") or ()
    owners = meta.get("ownerReferences") or ()
    return PodRecord(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        uid=str(meta.get("uid", "")),
        labels=_labels(obj),
        node=spec.get("nodeName") or None,
        phase=str(status.get("phase") or "Pending"),
        conditions=_conditions(status),
        containers=tuple(_container_status(c) for c in status.get("containerStatuses") or ()),
        container_names=tuple(str(c.get("name", "")) for c in containers),
        images=tuple(str(c.get("image", "")) for c in containers),
        pod_ip=status.get("podIP") or None,
        created=parse_time(meta.get("creationTimestamp")),
        deletion_timestamp=parse_time(meta.get("deletionTimestamp")),
        deletion_grace_period_seconds=meta.get("deletionGracePeriodSeconds"),
        status_reason=str(status.get("reason") or ""),
        status_message=str(status.get("message") or ""),
        owner_kind=str(owners[0].get("kind", "")) if owners else "",
        resource_version=str(meta.get("resourceVersion", "")),
    )


def node_from_json(obj: Json) -> NodeRecord:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return NodeRecord(
        name=str(_meta(obj).get("name", "")),
        labels=_labels(obj),
        taints=tuple(
            Taint(
                key=str(t.get("key", "")),
                effect=str(t.get("effect", "")),
                value=str(t.get("value") or ""),
                time_added=parse_time(t.get("timeAdded")),
            )
            for t in spec.get("taints") or ()
        ),
        unschedulable=bool(spec.get("unschedulable", False)),
        conditions=_conditions(status),
        addresses=tuple(
            (str(a.get("type", "")), str(a.get("address", ""))) for a in status.get("addresses") or ()
        ),
        resource_version=str(_meta(obj).get("resourceVersion", "")),
    )


def _endpoint(raw: Json) -> Endpoint:
    conditions = raw.get("conditions") or {}
    ref = raw.get("targetRef") or {}
    # EndpointConditions: a nil `ready` means ready (consumers such as kube-proxy read it so).
    ready = conditions.get("ready")
    serving = conditions.get("serving")
    return Endpoint(
        addresses=tuple(str(a) for a in raw.get("addresses") or ()),
        pod=str(ref["name"]) if ref.get("kind") == "Pod" and ref.get("name") else None,
        node=raw.get("nodeName") or None,
        ready=True if ready is None else bool(ready),
        serving=(True if ready is None else bool(ready)) if serving is None else bool(serving),
        terminating=bool(conditions.get("terminating") or False),
    )


def endpoint_slice_from_json(obj: Json) -> EndpointSliceRecord:
    meta = _meta(obj)
    return EndpointSliceRecord(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        service=str(_labels(obj).get("kubernetes.io/service-name", "")),
        endpoints=tuple(_endpoint(e) for e in obj.get("endpoints") or ()),
        ports=tuple(int(p["port"]) for p in obj.get("ports") or () if p.get("port") is not None),
        resource_version=str(meta.get("resourceVersion", "")),
    )


def event_from_json(obj: Json) -> EventRecord:
    meta = _meta(obj)
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    ts = (
        parse_time(obj.get("eventTime"))
        or parse_time(obj.get("lastTimestamp"))
        or parse_time((obj.get("series") or {}).get("lastObservedTime"))
        or parse_time(obj.get("firstTimestamp"))
        or parse_time(meta.get("creationTimestamp"))
    )
    return EventRecord(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        reason=str(obj.get("reason") or ""),
        message=str(obj.get("message") or obj.get("note") or ""),
        type=str(obj.get("type") or "Normal"),
        object_kind=str(involved.get("kind", "")),
        object_name=str(involved.get("name", "")),
        ts=ts,
        count=int(obj.get("count") or 1),
        resource_version=str(meta.get("resourceVersion", "")),
    )


def deployment_from_json(obj: Json) -> DeploymentRecord:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    template = (spec.get("template") or {}).get("spec") or {}
    return DeploymentRecord(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        # apps/v1 defaults spec.replicas to 1 when it is left out.
        replicas=int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1),
        selector=dict((spec.get("selector") or {}).get("matchLabels") or {}),
        ready_replicas=int(status.get("readyReplicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or 0),
        unavailable_replicas=int(status.get("unavailableReplicas") or 0),
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        conditions=_conditions(status),
        containers=tuple(
            ContainerSpec(
                name=str(c.get("name", "")),
                image=str(c.get("image", "")),
                command=tuple(c.get("command") or ()),
                args=tuple(c.get("args") or ()),
            )
            for c in template.get("containers") or ()
        ),
    )


def service_from_json(obj: Json) -> ServiceRecord:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    ingress = ((status.get("loadBalancer") or {}).get("ingress")) or ()
    return ServiceRecord(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        type=str(spec.get("type") or "ClusterIP"),
        cluster_ip=spec.get("clusterIP") or None,
        ports=tuple(
            ServicePort(
                port=int(p.get("port", 0)),
                target_port=str(p.get("targetPort", "")),
                node_port=p.get("nodePort"),
                name=str(p.get("name") or ""),
            )
            for p in spec.get("ports") or ()
        ),
        load_balancer_ingress=tuple(str(i.get("ip") or i.get("hostname") or "") for i in ingress if i),
        selector=dict(spec.get("selector") or {}),
    )


def _cpu_metric(metrics: Any) -> Json:
    """The `resource` part of the cpu Resource entry of spec.metrics or status.currentMetrics."""
    for metric in metrics or ():
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            return resource
    return {}


def autoscaler_from_json(obj: Json) -> AutoscalerRecord:
    """An autoscaling/v2 HorizontalPodAutoscaler; a status not yet written reads as 0 replicas."""
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    target = spec.get("scaleTargetRef") or {}
    wanted = (_cpu_metric(spec.get("metrics")).get("target") or {}).get("averageUtilization")
    current = _cpu_metric(status.get("currentMetrics")).get("current") or {}
    utilization = current.get("averageUtilization")
    return AutoscalerRecord(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        target_kind=str(target.get("kind", "")),
        target_name=str(target.get("name", "")),
        min_replicas=int(spec.get("minReplicas") or 1),
        max_replicas=int(spec.get("maxReplicas") or 0),
        target_utilization=int(wanted) if wanted is not None else None,
        current_replicas=int(status.get("currentReplicas") or 0),
        desired_replicas=int(status.get("desiredReplicas") or 0),
        utilization=int(utilization) if utilization is not None else None,
        average_value=str(current.get("averageValue") or ""),
        last_scale_time=parse_time(status.get("lastScaleTime")),
        conditions=_conditions(status),
        resource_version=str(meta.get("resourceVersion", "")),
    )


def namespace_from_json(obj: Json) -> NamespaceRecord:
    return NamespaceRecord(
        name=str(_meta(obj).get("name", "")),
        labels=_labels(obj),
        phase=str((obj.get("status") or {}).get("phase") or "Active"),
    )


# The annotation that marks a cluster's default StorageClass (kubernetes.io/docs/concepts/
# storage/storage-classes/#default-storageclass).
DEFAULT_STORAGE_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def default_storage_class(items: Any) -> str | None:
    """The name of the default StorageClass among `items` (StorageClass JSON), or None."""
    for item in items:
        meta = _meta(item)
        if str((meta.get("annotations") or {}).get(DEFAULT_STORAGE_CLASS_ANNOTATION, "")).lower() == "true":
            return str(meta.get("name", ""))
    return None
