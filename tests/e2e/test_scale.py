"""scale on the real control plane: the Deployment's scale subresource, then the controllers."""

from __future__ import annotations

import math
import random
import time

import pytest
from kubernetes import client as k8s
from pydantic import TypeAdapter

from chaoslab.analysis import capacity_recovered, ready_endpoints
from chaoslab.cluster.base import EventKind
from chaoslab.spec import FaultSpec
from tests.e2e.conftest import EventLog, workload

pytestmark = pytest.mark.e2e

FAULT = TypeAdapter(FaultSpec)


def test_scale_up_then_down_and_capacity_follows_the_desired_replicas(open_kube, kube: k8s.ApiClient) -> None:
    apps = k8s.AppsV1Api(kube)
    cluster = open_kube()
    log = EventLog(cluster)
    deployment = cluster.deploy(workload(replicas=2))
    cluster.wait_ready(deployment, timeout=120)
    log.wait_for(lambda log: len(log.ready_endpoints()) == 2, "two ready endpoints")
    measure_start = time.time()

    up = cluster.inject(deployment, FAULT.validate_python({"at": 0, "action": "scale", "replicas": 5}), "f0", random.Random(0))
    assert up.targets == (deployment.name,) and up.detail == "replicas=5"
    assert apps.read_namespaced_deployment_scale(deployment.name, deployment.namespace).spec.replicas == 5
    log.wait_for(lambda log: len(log.ready_endpoints()) == 5, "five ready endpoints")
    scaled_up = time.time()
    (event,) = log.of(EventKind.SCALED)
    assert event.detail == "replicas=5 previous=2"

    down = cluster.inject(deployment, FAULT.validate_python({"at": 0, "action": "scale", "replicas": 1}), "f1", random.Random(0))
    assert down.ready_before == 5
    log.wait_for(lambda log: len(log.ready_endpoints()) == 1 and len(log.of(EventKind.POD_DELETED)) == 4, "one pod left")
    assert len([p for p in cluster.pods(deployment) if p.phase == "Running"]) == 1

    # Capacity recovery after the scale-up: ready endpoints reach the new desired count.
    endpoints = ready_endpoints(log.frame(), measure_start=measure_start, desired_replicas=2)
    recovered = capacity_recovered(endpoints, up.ts, scaled_up)
    assert math.isfinite(recovered) and 0.0 < recovered <= scaled_up - up.ts
    scaled_down = log.of(EventKind.SCALED)[1]
    assert scaled_down.detail == "replicas=1 previous=5"
    assert list(endpoints[endpoints["ts"] >= scaled_down.ts]["desired"].unique()) == [1.0]
    cluster.teardown(deployment)
