"""The kubernetes backend: the Cluster protocol on a real cluster (minikube, kind, cloud).

Layout, one concern per module:
  records.py   the values the API wrapper returns, and the `KubeApi` protocol
  client.py    the one module that imports `kubernetes` (our wrapper, `connect`)
  convert.py   API JSON -> records
  manifests.py the objects a workload becomes
  safety.py    the refusals (context, namespace, control plane, blast radius)
  watches.py   watches -> the event vocabulary, with 410 Gone resume
  cluster.py   `KubernetesCluster`
  targets.py   `describe_targets`, for --dry-run

Importing this package does not import `kubernetes`; `open_kubernetes` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from chaoslab.cluster.kube.cluster import KubernetesCluster, KubeTimeouts
from chaoslab.cluster.kube.targets import describe_targets
from chaoslab.spec import KubernetesClusterSpec

__all__ = ["KubernetesCluster", "KubeTimeouts", "describe_targets", "open_kubernetes"]


def open_kubernetes(
    spec: KubernetesClusterSpec,
    *,
    yes: bool = False,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> KubernetesCluster:
    """Connect to the cluster the spec names and wrap it as a Cluster.

    The safety checks on the context run before the first request, so a refused context
    is refused (exit 2) even when it is unreachable from here.
    """
    from chaoslab.cluster.kube.client import connect

    api = connect(spec, environ=environ, check=False)
    try:
        cluster = KubernetesCluster(spec, api, yes=yes, base_dir=base_dir)
        api.check_reachable()
    except BaseException:
        api.close()
        raise
    return cluster
