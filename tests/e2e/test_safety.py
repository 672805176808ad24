"""The safety refusals against a real API server: nothing is changed when chaoslab refuses."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s
from pydantic import TypeAdapter

from chaoslab.errors import EXIT_USAGE, UsageError
from chaoslab.spec import FaultSpec
from tests.e2e.conftest import kube_spec, kwok_state, pods_by_node, workload
from tests.e2e.localcluster import State

pytestmark = pytest.mark.e2e

FAULT = TypeAdapter(FaultSpec)


def test_kube_system_is_refused_before_anything_is_created(open_kube, core: k8s.CoreV1Api) -> None:
    before = {d.metadata.name for d in k8s.AppsV1Api(core.api_client).list_namespaced_deployment("kube-system").items}
    with pytest.raises(UsageError) as refused:
        open_kube(namespace="kube-system")
    assert refused.value.exit_code == EXIT_USAGE
    assert "refusing namespace 'kube-system'" in str(refused.value)
    after = {d.metadata.name for d in k8s.AppsV1Api(core.api_client).list_namespaced_deployment("kube-system").items}
    assert after == before


def test_a_context_that_is_not_obviously_local_needs_allow_contexts_or_yes(local: State, open_kube) -> None:
    with pytest.raises(UsageError) as refused:
        open_kube(allowContexts=[])
    assert f"refusing to run against context '{local.context}'" in str(refused.value)
    assert "allowContexts" in str(refused.value)
    cluster = open_kube(allowContexts=[], yes=True)  # --yes: the user said so
    assert {n.name for n in cluster.nodes()} == {local.control_plane_node, *local.workers}


def test_the_control_plane_node_is_never_touched(local: State, open_kube, core: k8s.CoreV1Api) -> None:
    cluster = open_kube(maxBlastRadius="100%")
    deployment = cluster.deploy(workload(replicas=2))
    cluster.wait_ready(deployment, timeout=120)
    (control_plane,) = [n for n in cluster.nodes() if n.control_plane]
    assert control_plane.name == local.control_plane_node
    for action in ("node-crash", "node-hang", "node-drain"):
        fault = FAULT.validate_python({"at": 0, "action": action, "target": {"name": control_plane.name}})
        with pytest.raises(UsageError) as refused:
            cluster.inject(deployment, fault, "f0", random.Random(0))
        assert "control-plane node" in str(refused.value)
    node = core.read_node(control_plane.name)
    assert not node.spec.unschedulable
    assert kwok_state(local, control_plane.name) == "running"
    cluster.teardown(deployment)


def test_the_blast_radius_limits_node_faults(local: State, open_kube) -> None:
    cluster = open_kube()  # maxBlastRadius 50%: half the workers (rounded down) at a time
    deployment = cluster.deploy(workload(replicas=2 * len(local.workers)))
    cluster.wait_ready(deployment, timeout=120)
    limit = max(1, len(local.workers) // 2)
    assert len(pods_by_node(cluster, deployment)) > limit  # enough nodes host pods to ask for too many
    fault = FAULT.validate_python({"at": 0, "action": "node-crash", "target": {"count": limit + 1}})
    with pytest.raises(UsageError) as refused:
        cluster.inject(deployment, fault, "f0", random.Random(0))
    assert f"above cluster.kubernetes.maxBlastRadius 50% (at most {limit})" in str(refused.value)
    assert all(kwok_state(local, worker) == "running" for worker in local.workers)
    cluster.teardown(deployment)


def _experiment(tmp_path: Path, state: State, **kubernetes: object) -> Path:
    spec = kube_spec(state, **kubernetes).model_dump(by_alias=True, exclude_defaults=True)
    experiment = {
        "name": "e2e-safety",
        "cluster": {"backend": "kubernetes", "kubernetes": spec},
        "workload": {"name": "web", "image": "registry.invalid/chaoslab-e2e:never-pulled", "replicas": 2},
        "timeline": {"warmup": "1s", "duration": "5s", "cooldown": "1s"},
        "faults": [
            {"at": "1s", "action": "node-drain", "target": {"name": state.control_plane_node}},
            {"at": "2s", "action": "pod-delete", "target": {"count": 1}},
        ],
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    return path


def test_dry_run_lists_the_real_targets_and_refusals(local: State, tmp_path: Path, core: k8s.CoreV1Api) -> None:
    """`chaoslab run --dry-run` reads the real cluster and changes nothing."""
    path = _experiment(tmp_path, local, namespace="kube-system")
    result = subprocess.run(
        [sys.executable, "-m", "chaoslab", "run", str(path), "--dry-run", "--out", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"context:   {local.context}" in out
    assert "REFUSED: namespace kube-system is one of Kubernetes' own" in out
    assert f"{local.control_plane_node}: control-plane, never touched" in out
    assert f"REFUSED: {local.control_plane_node} is a control-plane node" in out
    for worker in local.workers:
        assert f"{worker}: worker, Ready=True" in out
    assert not (tmp_path / "results").exists()


def test_run_in_kube_system_exits_2_without_writing_results(local: State, tmp_path: Path) -> None:
    path = _experiment(tmp_path, local, namespace="kube-system")
    result = subprocess.run(
        [sys.executable, "-m", "chaoslab", "run", str(path), "--out", str(tmp_path / "results"), "--no-images"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == EXIT_USAGE, result.stdout + result.stderr
    assert "kube-system" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()
