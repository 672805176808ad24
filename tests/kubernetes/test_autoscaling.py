"""The HorizontalPodAutoscaler on the kubernetes backend: created beside the workload
(autoscaling/v2, as the spec says it), removed at teardown, refused before anything
is deployed, dry run included, when the cluster serves no resource metrics API, and its
evaluations (status changes, watched) written to autoscaler.csv as the sim writes them."""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from chaoslab.cluster.base import AUTOSCALER_COLUMNS
from chaoslab.cluster.kube import describe_targets
from chaoslab.cluster.kube.client import connect
from chaoslab.cluster.kube.convert import autoscaler_from_json
from chaoslab.cluster.kube.manifests import autoscaler_body, generated_objects, with_autoscaler
from chaoslab.cluster.kube.records import Condition
from chaoslab.cluster.kube.watches import AutoscalerTracker, SampleSink, autoscaler_reason
from chaoslab.errors import EXIT_ENVIRONMENT, ClusterError
from chaoslab.observe import EventRecorder
from chaoslab.spec import Experiment
from tests.kubernetes.conftest import EVENT_DEADLINE_SECONDS, workload
from tests.kubernetes.fake import FakeKubeApi, RecordingProvider
from tests.kubernetes.test_client import ApiServer, hpa_json, kubeconfig, server, spec  # noqa: F401 - fixture

AUTOSCALING = {
    "minReplicas": 2,
    "maxReplicas": 6,
    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}],
}


def autoscaled(**fields: object):
    return workload(**{"resources": {"requests": {"cpu": "100m"}}, "autoscaling": AUTOSCALING, **fields})


def test_deploy_creates_the_hpa_after_the_deployment_and_teardown_removes_it(make_cluster, api: FakeKubeApi) -> None:
    cluster = make_cluster({"namespace": "shared"})
    api.create_namespace("shared", {})
    deployment = cluster.deploy(autoscaled(replicas=2))
    created = [(c[2], c[3]) for c in api.calls if c[0] == "create_object"]
    assert created == [("ConfigMap", "web-app"), ("Deployment", "web"), ("Service", "web"), ("HorizontalPodAutoscaler", "web")]
    hpa = api.get("HorizontalPodAutoscaler", deployment.namespace, "web")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 2,
        "maxReplicas": 6,
        "metrics": AUTOSCALING["metrics"],
    }  # no behavior: the API server's defaults apply, as for a kubectl-applied HPA
    container = api.get("Deployment", deployment.namespace, "web")["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["cpu"] == "100m"
    cluster.teardown(deployment)
    assert ("delete_object", "shared", "HorizontalPodAutoscaler", "web") in api.calls


def test_behavior_is_sent_as_written() -> None:
    spec_ = autoscaled(
        autoscaling={
            **AUTOSCALING,
            "behavior": {
                "scaleDown": {"stabilizationWindowSeconds": 60, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}]},
                "scaleUp": {"selectPolicy": "Min"},
            },
        }
    )
    body = autoscaler_body(spec_, "web", {})
    assert body["spec"]["behavior"] == {
        "scaleUp": {"selectPolicy": "Min"},
        "scaleDown": {"stabilizationWindowSeconds": 60, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}]},
    }


def test_without_a_metrics_api_nothing_is_deployed_and_metrics_server_is_named(make_cluster, api: FakeKubeApi) -> None:
    api.resource_metrics = False
    cluster = make_cluster()
    with pytest.raises(ClusterError) as caught:
        cluster.deploy(autoscaled())
    assert caught.value.exit_code == EXIT_ENVIRONMENT == 3
    message = str(caught.value)
    assert "metrics.k8s.io" in message and "metrics-server" in message
    assert "minikube addons enable metrics-server" in message and "Nothing was deployed" in message
    assert not [c for c in api.calls if c[0] in ("create_namespace", "create_object")]


def test_the_dry_run_refuses_too_and_otherwise_names_the_hpa() -> None:
    experiment = Experiment.model_validate(
        {
            "name": "web-autoscale",
            "cluster": {"backend": "kubernetes"},
            "workload": {"name": "web", "replicas": 1, "resources": {"requests": {"cpu": "100m"}}, "autoscaling": AUTOSCALING},
        }
    )
    api = FakeKubeApi()
    text = describe_targets(experiment, api=api, node_provider=RecordingProvider())
    assert "autoscaling: HorizontalPodAutoscaler (autoscaling/v2) 2-6 replicas at 60% CPU" in text
    assert api.calls == []
    api.resource_metrics = False
    with pytest.raises(ClusterError, match="minikube addons enable metrics-server") as caught:
        describe_targets(experiment, api=api, node_provider=RecordingProvider())
    assert caught.value.exit_code == 3


@pytest.mark.parametrize("status, served", [(200, True), (404, False), (503, False)])
def test_the_client_asks_the_discovery_endpoint(server, tmp_path: Path, status: int, served: bool) -> None:  # noqa: F811
    ApiServer.metrics_status = status
    api = connect(spec(kubeconfig(tmp_path, server.server_address[1])), environ={})
    try:
        assert api.has_resource_metrics() is served
    finally:
        api.close()
    assert any(path == "/apis/metrics.k8s.io/v1beta1" for _, path, _, _ in ApiServer.requests)


def test_the_hpa_body_reaches_the_server_exactly_as_built(server, tmp_path: Path) -> None:  # noqa: F811
    objects = with_autoscaler(generated_objects(autoscaled(), python_image="python:3.12-slim", app_source=""), autoscaled())
    body = objects.objects[-1]
    assert body["kind"] == "HorizontalPodAutoscaler"
    api = connect(spec(kubeconfig(tmp_path, server.server_address[1])), environ={})
    try:
        api.create_object("ns", body)
    finally:
        api.close()
    method, path, _, sent = ApiServer.requests[-1]
    assert (method, path) == ("POST", "/apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers")
    assert json.loads(sent) == json.loads(json.dumps(body))


def test_the_real_hpas_rescale_event_becomes_hpa_scaled() -> None:
    from chaoslab.cluster.base import EventKind
    from chaoslab.cluster.kube.records import EventRecord
    from chaoslab.cluster.kube.watches import Causes, EventTracker

    tracker = EventTracker(Causes())
    record = EventRecord(
        name="web.1", namespace="ns", reason="SuccessfulRescale", object_kind="HorizontalPodAutoscaler", object_name="web",
        message="New size: 3; reason: cpu resource utilization (percentage of request) above target", ts=1000.0,
    )
    (event,) = tracker.changes(None, record, observed=1000.0)
    assert (event.kind, event.object, event.name, event.ts) == (EventKind.HPA_SCALED, "hpa", "web", 1000.0)
    assert event.detail.startswith("replicas=3 message=New size: 3; reason: cpu resource utilization")
    other = EventRecord(name="web.2", namespace="ns", reason="FailedGetResourceMetric", object_kind="HorizontalPodAutoscaler", object_name="web")
    assert tracker.changes(None, other, observed=1001.0) == []


# --- the real HPA's evaluations in autoscaler.csv -------------------------------------


def _rows(recorder: EventRecorder, path: Path, count: int) -> pd.DataFrame:
    """autoscaler.csv once it has `count` rows, draining the recorder as the engine does."""
    deadline = time.monotonic() + EVENT_DEADLINE_SECONDS
    while True:
        recorder.drain()
        frame = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=list(AUTOSCALER_COLUMNS))
        if len(frame) >= count:
            return frame
        if time.monotonic() >= deadline:
            raise AssertionError(f"autoscaler.csv has {len(frame)} of {count} rows:\n{frame}")
        time.sleep(0.02)


def test_every_evaluation_of_the_real_hpa_becomes_a_row_of_autoscaler_csv(make_cluster, api: FakeKubeApi, tmp_path: Path) -> None:
    cluster = make_cluster()
    started = time.time()
    deployment = cluster.deploy(autoscaled(replicas=2))
    recorder = EventRecorder(cluster, tmp_path / "events.csv", tmp_path / "autoscaler.csv")
    table = tmp_path / "autoscaler.csv"
    namespace = deployment.namespace
    # The controller's syncs: no metric yet, then 121 % of the request (2 -> 4), then a
    # lower CPU held by the scale-down stabilization window.
    api.evaluate_autoscaler(namespace, "web", desired=None, utilization=None)
    api.evaluate_autoscaler(namespace, "web", desired=4, utilization=121)
    api.evaluate_autoscaler(namespace, "web", desired=4, utilization=30, able="ScaleDownStabilized")
    rows = _rows(recorder, table, 3)
    assert list(rows.columns) == list(AUTOSCALER_COLUMNS)
    assert rows[["name", "current", "desired", "target", "reason"]].values.tolist() == [
        ["web", 2, 2, 60, "FailedGetResourceMetric"],  # nothing decided: desired is current, as on sim
        ["web", 2, 4, 60, "DesiredWithinRange"],
        ["web", 4, 4, 60, "ScaleDownStabilized"],
    ]
    assert math.isnan(rows["utilization"][0]) and rows["utilization"][1:].tolist() == [121, 30]
    # What the status does not say stays empty (missing is NaN, never 0).
    assert rows[["recommendation", "ready", "unready", "missing"]].isna().all().all()
    assert rows["ts"].is_monotonic_increasing and started - 1 <= rows["ts"].min() and rows["ts"].max() <= time.time()
    # The scale-up is the Deployment's and an hpa_scaled event, as before.
    assert api.get("Deployment", namespace, "web")["spec"]["replicas"] == 4
    # A sync that finds everything as it was writes nothing new: no row. The next one does.
    api.evaluate_autoscaler(namespace, "web", desired=4, utilization=30, able="ScaleDownStabilized")
    api.evaluate_autoscaler(namespace, "web", desired=3, utilization=30, average_value="30m")
    rows = _rows(recorder, table, 4)
    time.sleep(0.2)
    rows = _rows(recorder, table, 4)
    assert len(rows) == 4 and rows[["current", "desired"]].values.tolist()[-1] == [4, 3]
    events = pd.read_csv(tmp_path / "events.csv")
    assert events[events["kind"] == "hpa_scaled"]["detail"].str.extract(r"replicas=(\d+)")[0].tolist() == ["4", "3"]
    recorder.close()


def test_an_evaluation_during_an_expired_watch_is_found_by_the_relist(make_cluster, api: FakeKubeApi, tmp_path: Path) -> None:
    cluster = make_cluster()
    deployment = cluster.deploy(autoscaled(replicas=2))
    recorder = EventRecorder(cluster, tmp_path / "events.csv", tmp_path / "autoscaler.csv")
    api.compact()  # every open watch gets 410 Gone; resuming needs a fresh list
    api.evaluate_autoscaler(deployment.namespace, "web", desired=3, utilization=95)
    (row,) = _rows(recorder, tmp_path / "autoscaler.csv", 1).itertuples(index=False)
    assert (row.current, row.desired, row.utilization, row.reason) == (2, 3, 95, "DesiredWithinRange")
    recorder.close()


def test_without_autoscaling_hpas_are_neither_listed_nor_watched(make_cluster, api: FakeKubeApi) -> None:
    # A user allowed everything but HPAs can still run every other experiment.
    api.fail["list_autoscalers"] = ClusterError("list HorizontalPodAutoscalers in ns: HTTP 403: forbidden")
    cluster = make_cluster()
    cluster.deploy(workload(replicas=2))
    assert list(cluster.autoscaler_samples()) == []
    assert not [c for c in api.calls if c[0] == "watch" and c[1] == "horizontalpodautoscalers"]
    assert "list_autoscalers" in api.fail, "never asked"


def test_the_hpa_status_is_read_as_kubectl_prints_it() -> None:
    record = autoscaler_from_json(hpa_json())
    assert (record.target_kind, record.target_name, record.min_replicas, record.max_replicas) == ("Deployment", "web", 2, 6)
    assert (record.current_replicas, record.desired_replicas, record.target_utilization) == (2, 4, 60)
    assert (record.utilization, record.average_value) == (121, "121m")
    assert record.last_scale_time == 1795778100.0  # 2026-11-27T11:15:00Z
    assert [c.type for c in record.conditions] == ["AbleToScale", "ScalingActive", "ScalingLimited"]
    assert autoscaler_reason(record) == "DesiredWithinRange"
    fresh = autoscaler_from_json({"metadata": {"name": "web"}, "spec": {"maxReplicas": 4}, "status": {"desiredReplicas": 0}})
    assert (fresh.current_replicas, fresh.desired_replicas, fresh.utilization, fresh.conditions) == (0, 0, None, ())


def test_the_reason_is_read_in_the_order_the_controller_sets_its_conditions() -> None:
    record = autoscaler_from_json(hpa_json())

    def with_conditions(**reasons: tuple[str, str]) -> str:
        conditions = tuple(Condition(type=name, status=status, reason=reason) for name, (status, reason) in reasons.items())
        return autoscaler_reason(replace(record, conditions=conditions))

    # A failed metric keeps the last sync's ScalingLimited: the failure is what decided.
    assert with_conditions(ScalingActive=("False", "FailedGetResourceMetric"), ScalingLimited=("True", "TooManyReplicas")) == "FailedGetResourceMetric"
    assert with_conditions(ScalingActive=("True", "ValidMetricFound"), ScalingLimited=("True", "ScaleUpLimit"), AbleToScale=("True", "SucceededRescale")) == "ScaleUpLimit"
    assert with_conditions(ScalingLimited=("False", "DesiredWithinRange"), AbleToScale=("True", "ScaleDownStabilized")) == "ScaleDownStabilized"
    assert with_conditions(ScalingLimited=("False", "DesiredWithinRange"), AbleToScale=("False", "FailedUpdateScale")) == "FailedUpdateScale"
    assert autoscaler_reason(replace(record, current_replicas=8)) == "current replicas above maxReplicas"  # as the sim says it
    # Scaled to 0 (a scale fault): autoscaling is disabled before the bounds are looked at.
    disabled = replace(record, current_replicas=0, desired_replicas=0, conditions=(Condition("ScalingActive", "False", "ScalingDisabled"),))
    assert autoscaler_reason(disabled) == "ScalingDisabled"


def test_a_count_outside_the_bounds_is_corrected_even_while_the_metric_fails() -> None:
    # A scale fault to 9 while metrics fail: the controller sets maxReplicas without reading
    # a metric, and the failed metric's condition is left from the sync before.
    record = replace(
        autoscaler_from_json(hpa_json()),
        current_replicas=9,
        desired_replicas=6,
        conditions=(Condition("AbleToScale", "True", "SucceededRescale"), Condition("ScalingActive", "False", "FailedGetResourceMetric")),
    )
    samples = SampleSink()
    AutoscalerTracker("web", 60, samples).changes(None, record, observed=1000.0)
    (sample,) = samples.drain()
    assert (sample.current, sample.desired, sample.reason) == (9, 6, "current replicas above maxReplicas")
    failing = replace(record, current_replicas=4, desired_replicas=6)  # within bounds: nothing decided
    AutoscalerTracker("web", 60, samples).changes(None, failing, observed=1000.0)
    (sample,) = samples.drain()
    assert (sample.current, sample.desired, sample.reason) == (4, 4, "FailedGetResourceMetric")


def test_the_client_lists_and_watches_hpas_at_their_autoscaling_v2_path(server, tmp_path: Path) -> None:  # noqa: F811
    api = connect(spec(kubeconfig(tmp_path, server.server_address[1])), environ={})
    try:
        listing = api.list_autoscalers("ns")
        (record,) = listing.items
        assert (record.name, record.desired_replicas, record.utilization, listing.resource_version) == ("web", 4, 121, "700")
        assert ApiServer.requests[-1][1].startswith("/apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers")
        (event,) = list(api.watch("horizontalpodautoscalers", "ns", "700", timeout_seconds=5))
        assert (event.type, event.resource_version, event.object.current_replicas) == ("MODIFIED", "701", 2)
        assert "watch=true" in ApiServer.requests[-1][1]
    finally:
        api.close()
