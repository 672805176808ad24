"""pod-delete on the real control plane: the ReplicaSet controller replaces the pod, and
capacity recovery is measured from our event stream with chaoslab.analysis."""

from __future__ import annotations

import math
import random
import time

import pytest
from pydantic import TypeAdapter

from chaoslab.analysis import capacity_recovered, ready_endpoints, recovery_phases
from chaoslab.cluster.base import EventKind
from chaoslab.spec import FaultSpec
from tests.e2e.conftest import EventLog, workload

pytestmark = pytest.mark.e2e

FAULT = TypeAdapter(FaultSpec)


def test_pod_delete_is_replaced_by_the_replicaset_and_capacity_recovery_is_measured(open_kube) -> None:
    cluster = open_kube()
    log = EventLog(cluster)
    deployment = cluster.deploy(workload(replicas=3))
    cluster.wait_ready(deployment, timeout=120)
    log.wait_for(lambda log: len(log.ready_endpoints()) == 3, "three ready endpoints")
    measure_start = time.time()

    fault = FAULT.validate_python({"at": 0, "action": "pod-delete", "target": {"count": 1}, "gracePeriodSeconds": 0})
    injection = cluster.inject(deployment, fault, "f0", random.Random(7))
    (victim,) = injection.targets
    assert injection.ready_before == 3 and injection.detail == "gracePeriodSeconds=0"

    def replaced(log: EventLog) -> bool:
        # Each from its own watch (pods, EndpointSlices): they arrive in any order.
        serving = log.ready_endpoints()
        return bool(log.of(EventKind.POD_DELETED, victim)) and victim not in serving and len(serving) == 3

    log.wait_for(replaced, "the victim deleted and a replacement serving")
    window_end = time.time()

    terminating = log.of(EventKind.POD_TERMINATING, victim)
    assert terminating and terminating[0].reason == "pod-delete" and terminating[0].detail == "gracePeriodSeconds=0"
    (replacement,) = [e for e in log.of(EventKind.POD_CREATED) if e.ts >= injection.ts - 1]
    assert replacement.reason == "ReplicaSet"  # created by the real ReplicaSet controller
    assert replacement.name != victim and replacement.name in log.ready_endpoints()

    # The numbers the report shows, computed from the events as recorded.
    frame = log.frame()
    endpoints = ready_endpoints(frame, measure_start=measure_start, desired_replicas=3)
    recovered = capacity_recovered(endpoints, injection.ts, window_end)
    assert math.isfinite(recovered) and 0.0 <= recovered <= window_end - injection.ts
    during = endpoints[(endpoints["ts"] >= injection.ts) & (endpoints["ts"] < window_end)]
    assert during["ready"].min() >= 2  # one pod of three was lost at most
    assert int(endpoints["ready"].iloc[-1]) == 3
    phases = recovery_phases(frame, fault_ts=injection.ts, window_end=window_end, action="pod-delete", targets=injection.targets)
    assert list(phases["pod"]) == [replacement.name] and list(phases["replaces"]) == [victim]
    row = phases.iloc[0]
    for column in ("phase_create_s", "phase_schedule_s", "phase_ready_s", "phase_total_s"):
        assert math.isfinite(row[column]) and row[column] >= -1.0, (column, row[column])  # API times: 1 s resolution
    assert row["phase_total_s"] <= window_end - injection.ts + 1.0

    cluster.teardown(deployment)
