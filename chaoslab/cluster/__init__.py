"""Cluster backends behind one protocol (see base.py); `open_cluster` picks one from the spec."""

from __future__ import annotations

from pathlib import Path

from chaoslab.cluster.base import Cluster
from chaoslab.errors import UsageError
from chaoslab.spec import ClusterSpec


def open_cluster(
    spec: ClusterSpec, *, seed: int = 0, yes: bool = False, base_dir: Path | None = None
) -> Cluster:
    """A connected backend for `spec.backend`. The caller must `close()` it.

    seed: makes the simulator's choices (pod names, balancing) repeatable per trial.
    yes: allow a kubernetes context that is not obviously local (`--yes`). base_dir: the
    experiment file's folder, which `workload.manifests` paths are relative to.
    """
    if spec.backend == "sim":
        from chaoslab.cluster.sim import SimCluster

        return SimCluster(spec.sim, seed=seed)
    if spec.backend == "kubernetes":
        from chaoslab.cluster.kube import open_kubernetes

        return open_kubernetes(spec.kubernetes, yes=yes, base_dir=base_dir)
    raise UsageError(f"unknown backend {spec.backend!r} (expected sim or kubernetes)")
