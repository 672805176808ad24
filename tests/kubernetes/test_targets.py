"""`describe_targets`: the dry run lists the real targets and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaoslab.cluster import open_cluster
from chaoslab.cluster.kube import describe_targets
from chaoslab.errors import EXIT_ENVIRONMENT, ClusterError
from chaoslab.spec import ClusterSpec, Experiment
from tests.kubernetes.fake import FakeKubeApi, RecordingProvider


def experiment(**fields: object) -> Experiment:
    data: dict = {
        "name": "web-node-crash",
        "cluster": {"backend": "kubernetes", "kubernetes": {"nodeProvider": {"type": "docker"}}},
        "workload": {"name": "web", "replicas": 3},
        "timeline": {"duration": "60s"},
        "faults": [
            {"at": "10s", "action": "pod-delete", "target": {"count": 1}, "gracePeriodSeconds": 0},
            {"at": "20s", "action": "node-crash", "target": {"count": 1}, "restoreAfter": "15s"},
            {"at": "40s", "action": "node-drain", "target": {"name": "minikube"}},
            {"at": "50s", "action": "pod-delete", "target": {"count": 3}},
        ],
    }
    data.update(fields)
    return Experiment.model_validate(data)


def test_the_dry_run_names_context_namespace_nodes_and_what_each_fault_hits() -> None:
    api = FakeKubeApi()
    text = describe_targets(experiment(), api=api, node_provider=RecordingProvider())
    assert api.calls == []  # read only
    assert "context:   minikube (local; server https://192.168.49.2:8443" in text
    assert "namespace: a new one per trial, chaoslab-web-<random>" in text
    assert "Deployment web" in text and "Service web" in text and "python:3.12-slim running the built-in app" in text
    assert "minikube: control-plane, never touched" in text
    assert "minikube-m02: worker, Ready=True; recording provider for minikube-m02, now running" in text
    assert "f0 at 10s pod-delete: 1 of 3 pod(s), chosen when it fires, gracePeriodSeconds=0" in text
    assert "f1 at 20s node-crash: 1 of the worker node(s) hosting the workload" in text
    assert "REFUSED: minikube is a control-plane node" in text
    assert "REFUSED when it fires: 3 of 3 pods is above the limit of 1" in text


def test_the_dry_run_shows_a_foreign_context_and_a_system_namespace_as_refused() -> None:
    api = FakeKubeApi(context="arn:aws:eks:eu-west-1:123:cluster/prod")
    exp = experiment(cluster={"backend": "kubernetes", "kubernetes": {"namespace": "kube-system"}})
    text = describe_targets(exp, api=api)
    assert "not obviously local" in text and "REFUSED: refusing to run against context" in text
    assert "REFUSED: namespace kube-system is one of Kubernetes' own" in text
    assert "no node provider" in text
    assert describe_targets(exp.model_copy(update={"cluster": ClusterSpec.model_validate({"backend": "kubernetes"})}), api=api, yes=True).count("REFUSED: refusing") == 0


def test_open_cluster_reports_an_unconfigured_cluster_as_an_environment_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ClusterError) as caught:
        open_cluster(ClusterSpec.model_validate({"backend": "kubernetes"}), yes=False)
    assert caught.value.exit_code == EXIT_ENVIRONMENT
    assert "no Kubernetes cluster is configured" in str(caught.value)


def test_open_cluster_refuses_a_foreign_context_before_any_request(tmp_path: Path) -> None:
    from chaoslab.errors import EXIT_USAGE, UsageError
    from tests.kubernetes.test_client import kubeconfig

    path = kubeconfig(tmp_path, 1, context="prod-eu")  # port 1: nothing would answer
    spec = ClusterSpec.model_validate({"backend": "kubernetes", "kubernetes": {"kubeconfig": str(path)}})
    with pytest.raises(UsageError) as caught:
        open_cluster(spec)
    assert caught.value.exit_code == EXIT_USAGE and "--yes" in str(caught.value)
    with pytest.raises(ClusterError, match="cannot reach a Kubernetes API server. Tried kubeconfig"):
        open_cluster(spec, yes=True)
