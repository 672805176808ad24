"""What a run would hit on a real cluster, for `chaoslab run --dry-run`; changes nothing.

Why it exists: before deleting anything on a real cluster, a person should see which
context, namespace, nodes and pods an experiment will touch and which faults the safety
rules will refuse. This module only reads (nodes, the namespace, existing pods, the
node provider's view of each node) and renders plain text.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from chaoslab.cluster.kube import manifests
from chaoslab.cluster.kube.records import KubeApi, NodeRecord, NotFound
from chaoslab.cluster.kube.safety import (
    require_resource_metrics,
    SYSTEM_NAMESPACES,
    blast_radius_limit,
    check_context,
    context_is_local,
)
from chaoslab.cluster.nodeproviders import NodeProvider, provider_from_spec
from chaoslab.errors import ChaoslabError, UsageError
from chaoslab.plan import fault_schedule, replicas_at, resolved_target_count
from chaoslab.specstateful import claim_names
from chaoslab.spec import (
    ContainerKillFault,
    Experiment,
    NodeDrainFault,
    PodDeleteFault,
    ScaleFault,
)
from chaoslab.units import format_duration


def describe_targets(
    experiment: Experiment,
    *,
    yes: bool = False,
    api: KubeApi | None = None,
    node_provider: NodeProvider | None = None,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The real targets of `experiment` on its kubernetes cluster, as text.

    Connects (unless `api` is given) and reads only. Safety refusals are listed as
    `REFUSED:` lines instead of raised, so the whole picture is shown at once. Raises
    ClusterError when the cluster cannot be reached.
    """
    spec = experiment.cluster.kubernetes
    workload = experiment.workload
    own_api = api is None
    if api is None:
        from chaoslab.cluster.kube.client import connect

        api = connect(spec, environ=environ)
    try:
        provider = node_provider or provider_from_spec(spec.node_provider, environ=environ)
        lines: list[str] = ["Kubernetes targets (dry run: nothing was changed)"]
        connection = api.connection
        local = "local" if context_is_local(connection.context) else "not obviously local"
        lines.append(
            f"  context:   {connection.context or 'in-cluster'} ({local}; server {connection.server}; {connection.source})"
        )
        try:
            check_context(connection, spec.allow_contexts, yes)
        except UsageError as exc:
            lines.append(f"  REFUSED: {exc}")
        if workload.autoscaling is not None:
            require_resource_metrics(api)  # exit 3 at the dry run already, naming metrics-server
            scaling = workload.autoscaling
            lines.append(
                f"  autoscaling: HorizontalPodAutoscaler (autoscaling/v2) {scaling.min_replicas}-{scaling.max_replicas} "
                f"replicas at {scaling.target_utilization}% CPU; the resource metrics API answers"
            )
        lines += _namespace_lines(api, spec.namespace, workload.name)
        lines += _workload_lines(experiment, base_dir or Path.cwd(), spec.namespace or f"chaoslab-{workload.name}-xxxxxx")
        lines += _claim_lines(experiment, api)
        nodes = sorted(api.list_nodes().items, key=lambda n: (not n.control_plane, n.name))
        hosting = _hosting_nodes(api, spec.namespace, workload)
        lines += _node_lines(nodes, hosting, provider)
        lines += _fault_lines(experiment, nodes, hosting)
        return "\n".join(lines)
    finally:
        if own_api:
            api.close()


def _namespace_lines(api: KubeApi, namespace: str | None, workload: str) -> list[str]:
    if namespace is None:
        return [
            f"  namespace: a new one per trial, chaoslab-{workload}-<random>, labelled "
            "app.kubernetes.io/managed-by=chaoslab and deleted at teardown"
        ]
    if namespace in SYSTEM_NAMESPACES:
        return [f"  namespace: {namespace}", f"  REFUSED: namespace {namespace} is one of Kubernetes' own"]
    try:
        existing = api.read_namespace(namespace)
    except NotFound:
        return [f"  namespace: {namespace} (does not exist: created for the run, deleted at teardown)"]
    return [
        f"  namespace: {namespace} (exists, {existing.phase}; only the workload's objects are "
        "created and deleted there, the namespace is kept)"
    ]


def _workload_lines(experiment: Experiment, base_dir: Path, namespace: str) -> list[str]:
    workload = experiment.workload
    spec = experiment.cluster.kubernetes
    try:
        if workload.manifests:
            documents = manifests.load_manifest_documents(workload.manifests, base_dir)
            objects = manifests.manifest_objects(workload, documents, namespace)
        else:
            objects = manifests.generated_objects(workload, python_image=spec.python_image, app_source="")
    except ChaoslabError as exc:
        return [f"  REFUSED: {exc}"]
    made = ", ".join(f"{kind} {name}" for kind, name in objects.owned)
    image = f"{objects.image} running the built-in app" if objects.built_in else objects.image
    target = "the Service's NodePort on a node address" if spec.target == "service" else spec.target
    return [
        f"  workload:  {made}; {workload.replicas} replica(s) of {image}",
        f"  load:      {target}",
    ]


def _claim_lines(experiment: Experiment, api: KubeApi) -> list[str]:
    """The PersistentVolumeClaims a StatefulSet will make, and the StorageClass they get."""
    volume = experiment.workload.volume
    claims = claim_names(experiment)
    if volume is None or not claims:
        return []
    lines = [f"  claims:    {', '.join(claims)} ({volume.size} each, ReadWriteOnce; deleted at teardown)"]
    if volume.storage_class_name is not None:
        lines.append(f"  storage:   StorageClass {volume.storage_class_name} (workload.volume.storageClassName)")
        return lines
    default = api.default_storage_class()
    if default is None:
        lines.append(
            "  storage:   REFUSED at deploy: the cluster has no default StorageClass, so the claims "
            "stay Pending and the pods unscheduled; set workload.volume.storageClassName, or mark one "
            "class default (storageclass.kubernetes.io/is-default-class: \"true\")"
        )
    else:
        lines.append(f"  storage:   the default StorageClass, {default}")
    return lines


def _hosting_nodes(api: KubeApi, namespace: str | None, workload: object) -> set[str] | None:
    """Nodes hosting the workload's pods today (explicit namespace only), else None."""
    if namespace is None or namespace in SYSTEM_NAMESPACES:
        return None
    name = getattr(workload, "name", "")
    selector = ",".join(f"{k}={v}" for k, v in sorted(manifests.selector_labels(name).items()))
    try:
        pods = api.list_pods(namespace, selector).items
    except NotFound:
        return None
    hosting = {p.node for p in pods if p.node}
    return hosting or None


def _node_lines(nodes: list[NodeRecord], hosting: set[str] | None, provider: NodeProvider) -> list[str]:
    workers = [n for n in nodes if not n.control_plane]
    lines = [f"  nodes:     {len(nodes)} ({len(workers)} worker(s) that node faults may hit)"]
    for node in nodes:
        role = "control-plane, never touched" if node.control_plane else "worker"
        state = f"Ready={node.ready}" + ("" if not node.unschedulable else ", cordoned")
        host = ""
        if hosting is not None and node.name in hosting:
            host = ", hosts workload pods"
        machine = ""
        if not node.control_plane:
            machine = f"; {provider.describe(node.name)}"
            try:
                machine += f", now {provider.state(node.name)}"
            except ChaoslabError as exc:
                machine += f" - PROBLEM: {exc}"
        lines.append(f"    {node.name}: {role}, {state}{host}{machine}")
    if hosting is None:
        lines.append("    (pods are placed when the run deploys; node faults pick among workers hosting them)")
    return lines


def _fault_lines(experiment: Experiment, nodes: list[NodeRecord], hosting: set[str] | None) -> list[str]:
    spec = experiment.cluster.kubernetes
    workers = [n.name for n in nodes if not n.control_plane]
    names = {n.name: n for n in nodes}
    node_limit = blast_radius_limit(spec.max_blast_radius, len(workers))
    lines = [f"  faults (maxBlastRadius {spec.max_blast_radius:.0%}: at most {node_limit} worker node(s) at once):"]
    if not experiment.faults:
        lines.append("    none")
    for scheduled in fault_schedule(experiment):
        fault = scheduled.fault
        head = f"    {scheduled.fault_id} at {format_duration(scheduled.at)} {fault.action}: "
        if isinstance(fault, ScaleFault):
            lines.append(head + f"{experiment.workload.kind} {experiment.workload.name} to {fault.replicas} replicas")
            continue
        if isinstance(fault, (PodDeleteFault, ContainerKillFault)):
            replicas = replicas_at(experiment, scheduled.at, scheduled.index)
            hit = resolved_target_count(experiment, fault, scheduled.at)
            limit = blast_radius_limit(spec.max_blast_radius, replicas)
            text = f"{hit if hit is not None else '?'} of {replicas} pod(s), chosen when it fires"
            if isinstance(fault, PodDeleteFault):
                grace = 0 if fault.force else fault.grace_period_seconds
                text += "" if grace is None else f", gracePeriodSeconds={grace}"
            else:
                text += f", {fault.signal} through /bin/sh in the container"
                if experiment.workload.image != manifests.BUILT_IN_IMAGE:
                    text += f" (needs a shell in {experiment.workload.image}; checked once the workload is ready, before the measurement)"
            lines.append(head + text)
            if hit is not None and hit > limit:
                lines.append(f"      REFUSED when it fires: {hit} of {replicas} pods is above the limit of {limit}")
            continue
        target = fault.target
        if target.name is not None:
            node = names.get(target.name)
            if node is None:
                lines.append(head + f"node {target.name}")
                lines.append(f"      REFUSED when it fires: there is no node {target.name}")
            elif node.control_plane:
                lines.append(head + f"node {target.name}")
                lines.append(f"      REFUSED: {target.name} is a control-plane node")
            else:
                lines.append(head + f"node {target.name}")
            continue
        hit = target.count if target.count is not None else None
        if hit is None and target.percent is not None:
            from chaoslab.plan import percent_of

            hit = percent_of(target.percent, len(workers))
        pool = sorted(hosting & set(workers)) if hosting is not None else workers
        extra = ""
        if isinstance(fault, NodeDrainFault):
            extra = f"; cordon, then evict the workload's pods through the Eviction API (PDBs honoured, timeout {format_duration(fault.timeout)})"
        if fault.action == "node-restore":
            lines.append(head + "nodes crashed, hung or drained by earlier faults")
            continue
        lines.append(head + f"{hit} of the worker node(s) hosting the workload (candidates: {', '.join(pool) or 'none'}){extra}")
        if hit is not None and hit > node_limit:
            lines.append(f"      REFUSED when it fires: {hit} node(s) is above the limit of {node_limit}")
    return lines
