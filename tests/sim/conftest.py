"""Fixtures for the simulated-cluster tests: clusters that are always closed, a seeded RNG."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaoslab.cluster.sim import SimCluster
from chaoslab.spec import SimClusterSpec, SimTimings

from tests.sim.helpers import FAST_TIMINGS


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., SimCluster]]:
    clusters: list[SimCluster] = []

    def factory(
        nodes: int = 3, timings: SimTimings = FAST_TIMINGS, seed: int = 7, proxy_mode: str = "auto"
    ) -> SimCluster:
        spec = SimClusterSpec(nodes=nodes, timings=timings, proxy_mode=proxy_mode)
        cluster = SimCluster(spec, workdir=tmp_path / f"sim{len(clusters)}", seed=seed)
        clusters.append(cluster)
        return cluster

    yield factory
    for cluster in clusters:
        cluster.close()


@pytest.fixture
def rng() -> random.Random:
    return random.Random(1234)
