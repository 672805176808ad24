"""Cluster backends behind one protocol (see base.py); `open_cluster` picks one from the spec."""

from __future__ import annotations

from chaoslab.cluster.base import Cluster
from chaoslab.errors import UsageError
from chaoslab.spec import ClusterSpec


def open_cluster(spec: ClusterSpec) -> Cluster:
    """A connected backend for `spec.backend`. The caller must `close()` it."""
    if spec.backend == "sim":
        from chaoslab.cluster.sim import SimCluster

        return SimCluster(spec.sim)
    raise UsageError(
        f"backend {spec.backend!r} is not available in this version of chaoslab yet "
        "(the kubernetes backend is tracked as its own issue); use backend: sim"
    )
