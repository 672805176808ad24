"""The guard rails between an experiment and a real cluster.

Why it exists: a chaos tool pointed at the wrong kubeconfig context deletes someone's
production pods. Every check that can refuse a run lives here, as small pure functions
over plain values, so each refusal is easy to read, test and explain. Refusals are
`UsageError` (exit 2): the user can fix them, and the message says how.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Sequence

from chaoslab.cluster.kube.records import Connection, KubeApi, NodeRecord
from chaoslab.errors import ClusterError, UsageError

# Context names that local tools create for throwaway clusters on this machine:
# minikube names its context `minikube` (or the --profile), kind `kind-<cluster>`,
# Docker Desktop `docker-desktop`.
LOCAL_CONTEXT_PATTERNS = ("minikube", "kind-*", "docker-desktop")
# Namespaces Kubernetes itself runs in; chaoslab never deploys to or faults them.
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
# Label on every namespace (and object) chaoslab creates, the standard managed-by label.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "chaoslab"
# The name in-cluster runs are known by in messages and in allowContexts.
IN_CLUSTER_CONTEXT = "in-cluster"


def context_is_local(context: str | None) -> bool:
    return context is not None and any(fnmatch.fnmatchcase(context, p) for p in LOCAL_CONTEXT_PATTERNS)


def check_context(connection: Connection, allow_contexts: Sequence[str], yes: bool) -> None:
    """Refuse a context that is not obviously a local throwaway cluster, unless allowed.

    Allowed: the local patterns above, any name or glob in `allowContexts`, or `--yes`.
    An in-cluster run is known as `in-cluster`.
    """
    name = connection.context or IN_CLUSTER_CONTEXT
    if yes or context_is_local(connection.context):
        return
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in allow_contexts):
        return
    raise UsageError(
        f"refusing to run against context {name!r} ({connection.server}): it is not "
        f"obviously a local cluster ({', '.join(LOCAL_CONTEXT_PATTERNS)}) and chaoslab "
        "deletes pods, drains and crashes nodes there. If that is what you want, pass "
        f"--yes, or add it to cluster.kubernetes.allowContexts (allowContexts: [{name}])"
    )


def check_namespace(namespace: str) -> None:
    if namespace in SYSTEM_NAMESPACES:
        raise UsageError(
            f"cluster.kubernetes.namespace: refusing namespace {namespace!r}: chaoslab never "
            "deploys to or injects faults into Kubernetes' own namespaces "
            f"({', '.join(sorted(SYSTEM_NAMESPACES))}); name another namespace, or leave "
            "it out to get a fresh one per run"
        )


def check_not_control_plane(node: NodeRecord, fault_id: str, action: str) -> None:
    if node.control_plane:
        raise UsageError(
            f"{fault_id} {action}: refusing node {node.name!r}: it is a control-plane node "
            "(label node-role.kubernetes.io/control-plane), which chaoslab never touches; "
            "target a worker node (by count, percent or the name of a worker)"
        )


def blast_radius_limit(max_fraction: float, total: int) -> int:
    """How many of `total` objects a run may disrupt at once: the share `max_fraction`,
    rounded down, but at least one so a single-replica workload can still be tested."""
    if total <= 0:
        return 0
    return max(1, math.floor(round(max_fraction * total, 9)))


def check_blast_radius(
    *,
    fault_id: str,
    action: str,
    what: str,
    hit: Iterable[str],
    already: Iterable[str],
    total: int,
    max_fraction: float,
) -> None:
    """Refuse a fault that would leave more than the allowed share of `what` disrupted.

    `already` are objects still disrupted by earlier faults (crashed, hung or drained
    nodes); they count against the same limit.
    """
    hit_set, already_set = set(hit), set(already)
    disrupted = hit_set | already_set
    limit = blast_radius_limit(max_fraction, total)
    if len(disrupted) <= limit:
        return
    earlier = f" ({len(already_set)} already disrupted by earlier faults)" if already_set else ""
    raise UsageError(
        f"{fault_id} {action}: would disrupt {len(disrupted)} of {total} {what}{earlier}, "
        f"above cluster.kubernetes.maxBlastRadius {max_fraction:.0%} (at most {limit}); "
        "lower the fault's target, restore earlier node faults first, or raise "
        "maxBlastRadius"
    )


METRICS_SERVER_HINT = (
    "workload.autoscaling needs the resource metrics API (metrics.k8s.io), and this cluster "
    "serves none: a HorizontalPodAutoscaler would never see CPU and never scale. Install "
    "metrics-server (minikube: `minikube addons enable metrics-server`; other clusters: "
    "https://github.com/kubernetes-sigs/metrics-server#installation), wait until "
    "`kubectl top pods -A` answers, then run again. Nothing was deployed"
)


def require_resource_metrics(api: KubeApi) -> None:
    """Raise ClusterError (exit 3) naming metrics-server when metrics.k8s.io is not served."""
    if not api.has_resource_metrics():
        raise ClusterError(METRICS_SERVER_HINT)
