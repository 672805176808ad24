"""Helpers for the simulated-cluster tests: fast timings, polling, real HTTP.

Timings are shortened (heartbeat 0.5 s, grace 2 s, back-off 0.5 s) so that the same
Kubernetes sequences play out in seconds; every wait polls with a generous deadline
because the machine is shared and noisy.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable

from chaoslab.cluster.base import ClusterEvent, Deployment
from chaoslab.cluster.network import ClientNetwork, connection_to
from chaoslab.cluster.sim import SimCluster
from chaoslab.spec import HttpGetAction, ProbeSpec, SimTimings, WorkloadSpec

FAST_TIMINGS = SimTimings(
    node_heartbeat_period=0.5,
    node_monitor_period=0.5,
    node_monitor_grace_period=2.0,
    pod_start_delay=0.3,
    back_off_initial=0.5,
    back_off_max=4.0,
    drain_retry_interval=0.5,
    # 10 nodes/s instead of 0.1: a second failed node is tainted at once, not 10 s later.
    node_eviction_rate=10.0,
)

READINESS = ProbeSpec(http_get=HttpGetAction(path="/readyz"), period_seconds=1, failure_threshold=1)


def workload(**fields: object) -> WorkloadSpec:
    base: dict[str, object] = {
        "name": "web",
        "replicas": 3,
        "readiness_probe": READINESS,
        "termination_grace_period_seconds": 2,
    }
    base.update(fields)
    return WorkloadSpec.model_validate(base)


def poll_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> object:
    """Call `predicate` until it returns something truthy; fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"after {timeout:g}s: {what}")
        time.sleep(interval)


def get(url: str, *, network: ClientNetwork, timeout: float = 2.0, path: str = "/") -> str:
    """One GET on a new connection: 'ok:<pod>', 'http_<status>', 'refused', 'reset' or 'timeout'.

    `network` is where the URL exists (`cluster.client_network()`): a sim cluster's
    kernel Service addresses exist only in its private network, and the same address
    from here would be somebody else's, so there is no default."""
    connection = connection_to(url, timeout, network)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    except ConnectionRefusedError:
        return "refused"
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
        return "reset"
    except (TimeoutError, socket.timeout):
        return "timeout"
    finally:
        connection.close()
    if response.status != 200:
        return f"http_{response.status}"
    return "ok:" + json.loads(body)["pod"]


class EventRecorder:
    """Accumulates a cluster's events across drains, as the engine's recorder would."""

    def __init__(self, cluster: SimCluster) -> None:
        self.cluster = cluster
        self.events: list[ClusterEvent] = []

    def pull(self) -> list[ClusterEvent]:
        self.events.extend(self.cluster.events())
        return self.events

    def of(self, kind: str, name: str | None = None) -> list[ClusterEvent]:
        return [e for e in self.pull() if e.kind.value == kind and (name is None or e.name == name)]


def ready_pods(cluster: SimCluster, deployment: Deployment) -> list[str]:
    return [p.name for p in cluster.pods(deployment) if p.ready]


