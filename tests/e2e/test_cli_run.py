"""`chaoslab run` with the kubernetes backend on the real control plane, through the engine.

KWOK pods serve no traffic, so the load goes to a stub HTTP server on loopback (an
explicit `cluster.kubernetes.target`); what this test checks is the cluster side of the
results folder: events.csv from the real controllers, faults.csv, and the capacity
recovery in summary.csv computed from them.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
import yaml

from chaoslab.results import read_run
from tests.e2e.conftest import kube_spec
from tests.e2e.localcluster import REPO_ROOT, State

pytestmark = pytest.mark.e2e


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's signature
        return  # quiet: Locust sends hundreds of requests


@pytest.fixture
def stub_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, name="e2e-stub", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_an_experiment_runs_unchanged_on_the_real_control_plane(local: State, stub_url: str, tmp_path: Path) -> None:
    spec = kube_spec(local, target=stub_url).model_dump(by_alias=True, exclude_defaults=True, mode="json")
    experiment = {
        "name": "e2e-pod-delete",
        "cluster": {"backend": "kubernetes", "kubernetes": spec},
        "workload": {
            "name": "web",
            "image": "registry.invalid/chaoslab-e2e:never-pulled",
            "replicas": 3,
            "readinessProbe": {"httpGet": {"path": "/readyz"}, "periodSeconds": 1},
            "terminationGracePeriodSeconds": 1,
        },
        "load": {"users": 2, "spawnRate": 10, "waitTime": {"min": "100ms", "max": "200ms"}, "timeout": "1s"},
        "timeline": {"warmup": "1s", "duration": "12s", "cooldown": "1s", "readyTimeout": "120s"},
        "faults": [{"at": "2s", "action": "pod-delete", "target": {"count": 1}, "gracePeriodSeconds": 0}],
        "measure": {"bucket": "100ms", "slo": {"availability": "99%", "window": "2s"}, "recoveryBudget": "10s"},
        "seed": 11,
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    out = tmp_path / "results"
    result = subprocess.run(
        [sys.executable, "-m", "chaoslab", "run", str(path), "--out", str(out), "--no-images"],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    run = read_run(run_dir)
    assert run.journal["backend"] == "kubernetes" and run.journal["target_url"] == stub_url
    token = json.loads(Path(local.kubeconfig).read_text())["users"][0]["user"]["token"]
    assert token not in (run_dir / "run.json").read_text()  # no credentials in the results
    (trial,) = run.trials
    assert trial.info.status == "completed"

    (fault,) = trial.faults.itertuples()
    assert fault.action == "pod-delete" and fault.ready_before == 3
    victim = str(fault.targets)
    events = trial.events
    after = events[pd.to_numeric(events["ts"]) >= float(fault.ts) - 1.0]
    replacement = after[(after["kind"] == "pod_created") & (after["reason"] == "ReplicaSet")]
    assert len(replacement) == 1 and replacement.iloc[0]["name"] != victim
    assert ((after["kind"] == "pod_deleted") & (after["name"] == victim)).any()
    assert ((after["kind"] == "endpoint_added") & (after["name"] == replacement.iloc[0]["name"])).any()

    summary = pd.read_csv(run_dir / "summary.csv")
    (row,) = summary.itertuples()
    # Measured from the real controllers' events; the stub kept the load side at 100 %.
    assert math.isfinite(row.capacity_recovered_s) and 0.0 <= row.capacity_recovered_s <= 10.0
