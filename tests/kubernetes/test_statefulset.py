"""StatefulSets on the kubernetes backend (fake API): the objects, the ordinal address, the
claims removed at teardown, the StorageClass check, and the dry run's claim lines."""

from __future__ import annotations

import random

import pytest

from chaoslab.cluster.kube import describe_targets
from chaoslab.errors import UsageError
from chaoslab.spec import Experiment, ScaleFault
from tests.kubernetes.conftest import workload
from tests.kubernetes.fake import FakeKubeApi, RecordingProvider


def database(**fields: object):
    base: dict[str, object] = {"name": "db", "kind": "StatefulSet", "image": "chaoslab/kv", "volume": {"size": "2Gi"}, "app": {"replayMsPerWrite": 3}}
    base.update(fields)
    return workload(**base)


def test_deploy_creates_the_statefulset_its_headless_service_and_a_service_per_ordinal(make_cluster, api: FakeKubeApi) -> None:
    cluster = make_cluster()
    deployment = cluster.deploy(database(podManagementPolicy="Parallel"))
    cluster.wait_ready(deployment, timeout=10)
    created = [(c[2], c[3]) for c in api.calls if c[0] == "create_object"]
    assert created == [
        ("ConfigMap", "db-app"),
        ("Service", "db-headless"),
        ("StatefulSet", "db"),
        ("Service", "db"),
        ("Service", "db-0"),
        ("Service", "db-1"),
        ("Service", "db-2"),
    ]
    namespace = deployment.namespace
    config = api.get("ConfigMap", namespace, "db-app")["data"]
    assert set(config) == {"app.py", "kv.py"} and "Store" in config["kv.py"]  # the file the sim runs
    statefulset = api.get("StatefulSet", namespace, "db")["spec"]
    assert statefulset["serviceName"] == "db-headless" and statefulset["podManagementPolicy"] == "Parallel"
    (template,) = statefulset["volumeClaimTemplates"]
    assert template["metadata"]["name"] == "data"
    assert template["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}  # default class
    (container,) = statefulset["template"]["spec"]["containers"]
    assert container["command"] == ["python", "/app/kv.py"]
    assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CHAOSLAB_DATA_DIR"] == "/data" and env["CHAOSLAB_REPLAY_MS_PER_WRITE"] == "3"
    assert api.get("Service", namespace, "db-headless")["spec"]["clusterIP"] == "None"
    ordinal = api.get("Service", namespace, "db-1")["spec"]
    assert ordinal["type"] == "NodePort" and ordinal["selector"]["statefulset.kubernetes.io/pod-name"] == "db-1"
    assert sorted(p.name for p in cluster.pods(deployment)) == ["db-0", "db-1", "db-2"]
    # The ordinal's own NodePort, on a node address, as for the workload's Service.
    port = ordinal["ports"][0]["nodePort"]
    assert cluster.ordinal_url(deployment, 1).endswith(f":{port}")
    assert cluster.ordinal_url(deployment, 1) != cluster.service_url(deployment)


def test_an_empty_dir_is_a_pod_volume_and_makes_no_claim(make_cluster, api: FakeKubeApi) -> None:
    cluster = make_cluster()
    deployment = cluster.deploy(database(volume={"type": "emptyDir", "mountPath": "/scratch"}))
    spec = api.get("StatefulSet", deployment.namespace, "db")["spec"]
    assert "volumeClaimTemplates" not in spec
    assert {"name": "data", "emptyDir": {}} in spec["template"]["spec"]["volumes"]
    assert api.list_claims(deployment.namespace) == ()


def test_teardown_deletes_the_claims_a_statefulset_keeps(make_cluster, api: FakeKubeApi) -> None:
    api.create_namespace("team-a", {})
    cluster = make_cluster({"namespace": "team-a"})
    deployment = cluster.deploy(database(replicas=2))
    cluster.wait_ready(deployment, timeout=10)
    assert api.list_claims("team-a") == ("data-db-0", "data-db-1")
    cluster.inject(deployment, ScaleFault(action="scale", at=0, replicas=1), "f0", random.Random(0))
    assert ("scale", "team-a", "db", 1) in api.calls
    assert api.list_claims("team-a") == ("data-db-0", "data-db-1"), "scaling down keeps the claims"

    cluster.teardown(deployment)
    assert api.list_claims("team-a") == ()
    deleted = [(c[2], c[3]) for c in api.calls if c[0] == "delete_object"]
    assert ("StatefulSet", "db") in deleted and ("PersistentVolumeClaim", "data-db-1") in deleted
    assert api.list_pods("team-a").items == ()


def test_claims_without_a_storage_class_need_a_default_one(make_cluster, api: FakeKubeApi) -> None:
    api.storage_classes = {"fast": False}
    cluster = make_cluster()
    with pytest.raises(UsageError, match="no default one") as caught:
        cluster.deploy(database())
    assert "workload.volume.storageClassName" in str(caught.value)
    assert not [c for c in api.calls if c[0] in ("create_namespace", "create_object")]
    named = make_cluster().deploy(database(volume={"storageClassName": "fast"}))
    template = api.get("StatefulSet", named.namespace, "db")["spec"]["volumeClaimTemplates"][0]
    assert template["spec"]["storageClassName"] == "fast"


def _stateful_experiment(**volume: object) -> Experiment:
    return Experiment.model_validate(
        {
            "name": "db-pod-delete",
            "cluster": {"backend": "kubernetes"},
            "workload": {"name": "db", "kind": "StatefulSet", "image": "chaoslab/kv", "replicas": 2, "volume": volume},
            "faults": [{"at": "5s", "action": "pod-delete", "target": {"name": "db-0"}}],
        }
    )


def test_the_dry_run_lists_the_claims_and_the_storage_class_they_get() -> None:
    api = FakeKubeApi()
    text = describe_targets(_stateful_experiment(), api=api, node_provider=RecordingProvider())
    assert "StatefulSet db" in text and "Service db-0" in text and "Service db-headless" in text
    assert "claims:    data-db-0, data-db-1 (1Gi each, ReadWriteOnce; deleted at teardown)" in text
    assert "storage:   the default StorageClass, standard" in text
    api.storage_classes = {}
    text = describe_targets(_stateful_experiment(), api=api, node_provider=RecordingProvider())
    assert "the cluster has no default StorageClass" in text
    text = describe_targets(_stateful_experiment(storageClassName="fast"), api=api, node_provider=RecordingProvider())
    assert "storage:   StorageClass fast" in text
    assert api.calls == []  # read only
