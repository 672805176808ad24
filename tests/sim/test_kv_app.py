"""chaoslab/kv on its own: what it acknowledged survives a SIGKILL on its volume, a torn
last record is dropped, the volume keeps its id and counts the app's starts, and the
replay happens before the port opens. A real process, real HTTP."""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaoslab.cluster.sim.kubelet import KV_PATH
from chaoslab.cluster.sim.processes import ManagedProcess, PortAllocator, spawn
from tests.sim.helpers import poll_until
from tests.sim.test_statefulset import request


@pytest.fixture
def start_kv(tmp_path: Path) -> Iterator[Callable[..., tuple[ManagedProcess, str]]]:
    # Not seeded: two suites on one machine would try the same ports in the same order.
    ports = PortAllocator(random.Random())
    started: list[ManagedProcess] = []

    def start(data_dir: Path | None, **env: str) -> tuple[ManagedProcess, str]:
        port = ports.allocate()
        variables = dict(os.environ, PORT=str(port), POD_NAME="db-0", NODE_NAME="node-1", **env)
        variables.pop("CHAOSLAB_DATA_DIR", None)
        if data_dir is not None:
            variables["CHAOSLAB_DATA_DIR"] = str(data_dir)
        process = spawn([sys.executable, "-S", str(KV_PATH)], variables, "kv", tmp_path / f"kv-{port}.log")
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        poll_until(lambda: request(url, "GET", "/identity")[0] == 200, 20, "kv listening")
        return process, url

    yield start
    for process in started:
        process.kill()


def test_acknowledged_writes_survive_a_kill_and_a_torn_record_is_dropped(start_kv, tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    process, url = start_kv(volume)
    status, headers, body = request(url, "GET", "/identity")
    assert (body["pod"], body["node"], body["starts"]) == ("db-0", "node-1", 1)
    volume_id = body["volume"]
    assert len(volume_id) == 12 and headers["volume"] == volume_id
    for number in range(20):
        assert request(url, "PUT", f"/kv/k{number}", f"v{number}")[0] == 200
    process.kill()  # SIGKILL: only what reached the log before each 200 is left
    with (volume / "kv.log").open("a", encoding="utf-8") as log:
        log.write(json.dumps({"k": "torn", "v": "x"})[:-3])  # a write cut off mid-record

    _, url = start_kv(volume, CHAOSLAB_REPLAY_MS_PER_WRITE="5")
    status, headers, body = request(url, "GET", "/identity")
    assert (body["volume"], body["starts"], body["keys"]) == (volume_id, 2, 20)
    assert all(request(url, "GET", f"/kv/k{n}")[2].get("value") == f"v{n}" for n in range(20))
    assert request(url, "GET", "/kv/torn")[0] == 404
    # The torn tail was cut off: a write after the restart is a record of its own.
    assert request(url, "PUT", "/kv/after", "1")[0] == 200
    lines = (volume / "kv.log").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 21 and json.loads(lines[-1]) == {"k": "after", "v": "1"}


def test_without_a_volume_nothing_persists_and_it_says_so(start_kv) -> None:
    process, url = start_kv(None)
    assert request(url, "PUT", "/kv/a", "1")[0] == 200
    _, headers, body = request(url, "GET", "/identity")
    assert body["volume"] is None and body["starts"] == 0 and headers["volume"] == ""
    process.kill()
    _, url = start_kv(None)
    assert request(url, "GET", "/kv/a")[0] == 404
