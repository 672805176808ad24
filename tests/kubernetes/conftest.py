"""Fixtures for the kubernetes backend's tests: the fake API and a cluster on top of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chaoslab.cluster.kube import KubernetesCluster, KubeTimeouts
from chaoslab.spec import KubernetesClusterSpec, WorkloadSpec
from tests import eventlog
from tests.kubernetes.fake import FakeKubeApi, RecordingProvider

# Short bounds so that every wait in these tests ends quickly; the fake answers at once.
FAST = KubeTimeouts(
    watch_seconds=1,
    watch_failure_seconds=5.0,
    poll_seconds=0.02,
    drain_retry_seconds=0.05,
    exec_seconds=5.0,
    namespace_delete_seconds=5.0,
    node_ready_seconds=5.0,
    thread_join_seconds=5.0,
)
# Generous deadline for polling the watcher threads on a noisy 2-core machine.
EVENT_DEADLINE_SECONDS = 20.0


@pytest.fixture
def api() -> FakeKubeApi:
    return FakeKubeApi()


@pytest.fixture
def provider(api: FakeKubeApi) -> RecordingProvider:
    return RecordingProvider(api)


@pytest.fixture
def make_cluster(api: FakeKubeApi, provider: RecordingProvider) -> Iterator[Callable[..., KubernetesCluster]]:
    made: list[KubernetesCluster] = []

    def make(spec: dict[str, Any] | None = None, **kwargs: Any) -> KubernetesCluster:
        kwargs.setdefault("node_provider", provider)
        kwargs.setdefault("timeouts", FAST)
        kwargs.setdefault("name_suffix", lambda: "a1b2c3")
        kwargs.setdefault("app_source", "print('app')\n")
        cluster = KubernetesCluster(KubernetesClusterSpec.model_validate(spec or {}), kwargs.pop("api", api), **kwargs)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.close()


def workload(**fields: Any) -> WorkloadSpec:
    base: dict[str, Any] = {"name": "web", "replicas": 3, "readinessProbe": {"httpGet": {"path": "/readyz"}, "periodSeconds": 1}}
    base.update(fields)
    return WorkloadSpec.model_validate(base)


class EventLog(eventlog.EventLog):
    deadline_s = EVENT_DEADLINE_SECONDS
    poll_s = 0.02  # the fake answers at once
