"""Real Locust against real local servers, through the engine's `LoadRun`.

What a person relies on: load.csv rows add up to what Locust itself counted, every
failure lands in its class, weights shape the traffic, a person's own locustfile works
with our listener, `processes: 2` merges its workers and listens on loopback only, and
no Locust process survives a stop or a crash.
"""

from __future__ import annotations

import csv
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from load_helpers import Finished, LoadTestServer, group_processes, run_load, wait_until

from chaoslab.errors import LoadError
from chaoslab.load.runner import LoadRun
from chaoslab.load.stream import LOAD_COLUMNS
from chaoslab.spec import LoadSpec

BUCKET = 0.1


def locust_total(trial: Path) -> tuple[int, int]:
    """(requests, failures) of the Aggregated row of Locust's own locust_stats.csv."""
    with (trial / "locust_stats.csv").open() as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                return int(row["Request Count"]), int(row["Failure Count"])
    raise AssertionError("no Aggregated row in locust_stats.csv")


def read_load_csv(trial: Path) -> list[dict[str, str]]:
    with (trial / "load.csv").open() as handle:
        lines = handle.read().splitlines()
    assert lines[0].split(",") == list(LOAD_COLUMNS)
    assert lines.count(lines[0]) == 1, "header written once"
    return list(csv.DictReader(lines))


def total(finished: Finished, column: str) -> int:
    return sum(getattr(row, column) for row in finished.rows)


def assert_no_process_left(run: LoadRun) -> None:
    assert run.pid is not None
    assert wait_until(lambda: not group_processes(run.pid), timeout=10), group_processes(run.pid)


def test_buckets_add_up_to_locust_totals_and_follow_weights(server: LoadTestServer, tmp_path: Path) -> None:
    load = LoadSpec.model_validate(
        {
            "users": 8,
            "spawnRate": 100,
            "waitTime": {"min": "5ms", "max": "10ms"},
            "timeout": "1s",
            "requests": [{"path": "/a", "weight": 1}, {"path": "/b", "weight": 3, "name": "bee"}],
        }
    )
    seen_live = []
    finished = run_load(load, server.url, tmp_path / "trial", 3.0, during=lambda run: seen_live.append(run.live()))
    rows, trial = finished.rows, finished.trial

    # load.csv holds exactly the rows handed out, contiguous, one per bucket.
    written = read_load_csv(trial)
    assert len(written) == len(rows) > 10
    assert [float(r["ts"]) for r in written] == [row.ts for row in rows]
    steps = {round(b.ts - a.ts, 6) for a, b in zip(rows, rows[1:])}
    assert steps == {BUCKET}

    requests, failures = locust_total(trial)
    assert total(finished, "requests") == requests > 300
    assert total(finished, "failures") == failures == 0
    # The server saw every request (plus at most the ones cut off by the stop).
    served = server.count("/a") + server.count("/b")
    assert requests <= served <= requests + load.users
    ratio = server.count("/b") / server.count("/a")
    assert 2.2 < ratio < 4.0, ratio

    assert max(row.users for row in rows) == load.users
    busy = [row for row in rows if row.requests]
    for row in busy:
        assert row.p50_ms is not None and row.max_ms is not None
        assert 0 < row.p50_ms <= row.p95_ms <= row.p99_ms <= row.max_ms  # type: ignore[operator]
    assert seen_live and seen_live[0].requests_per_s > 50 and seen_live[0].error_rate == 0.0
    assert seen_live[0].users == load.users

    # Locust's own CSVs are kept beside ours; the request names are Locust's.
    names = {row["Name"] for row in csv.DictReader((trial / "locust_stats.csv").open())}
    assert {"/a", "bee", "Aggregated"} <= names
    assert (trial / "locust_stats_history.csv").is_file() and (trial / "locust_failures.csv").is_file()

    assert finished.run.stop() == [] and finished.run.poll() == []  # idempotent
    finished.run.close()
    assert_no_process_left(finished.run)
    assert "locust" not in sys.modules and "gevent" not in sys.modules


def test_failures_land_in_their_class(server: LoadTestServer, tmp_path: Path) -> None:
    load = LoadSpec.model_validate(
        {
            "users": 6,
            "spawnRate": 100,
            "waitTime": {"min": "10ms", "max": "20ms"},
            "timeout": "500ms",
            "requests": [{"path": p} for p in ("/ok", "/status/500", "/reset", "/hang")],
        }
    )
    finished = run_load(load, server.url, tmp_path / "trial", 4.0)

    requests, failures = locust_total(finished.trial)
    assert total(finished, "requests") == requests
    assert total(finished, "failures") == failures
    # Each class matches what the server was asked; a stop may cut off one request a user.
    slack = load.users
    for column, path in (("http_5xx", "/status/500"), ("reset", "/reset"), ("timeout", "/hang")):
        assert 0 < server.count(path) - slack <= total(finished, column) <= server.count(path), column
    assert total(finished, "refused") == 0
    assert total(finished, "other") == 0
    # Timeouts wait load.timeout; they count where they started, not where they ended.
    timeouts = [row for row in finished.rows if row.timeout]
    assert timeouts[0].ts < finished.rows[0].ts + 1.0
    # Latency percentiles describe successful requests only (never the 500 ms timeouts).
    assert max(row.max_ms or 0 for row in finished.rows) < 400


def test_connection_refused_on_a_closed_port(closed_port: int, tmp_path: Path) -> None:
    load = LoadSpec.model_validate({"users": 3, "spawnRate": 100, "waitTime": {"min": "10ms", "max": "20ms"}})
    finished = run_load(load, f"http://127.0.0.1:{closed_port}", tmp_path / "trial", 2.0)
    requests, failures = locust_total(finished.trial)
    assert total(finished, "refused") == failures == requests > 20
    assert all(row.p50_ms is None and row.max_ms is None for row in finished.rows)


def test_user_locustfile_runs_with_our_listener(server: LoadTestServer, tmp_path: Path) -> None:
    experiment_dir = tmp_path / "experiments"
    (experiment_dir / "loadtests").mkdir(parents=True)
    (experiment_dir / "loadtests" / "shop.py").write_text(
        textwrap.dedent(
            """
            from locust import HttpUser, constant, task

            class Shopper(HttpUser):
                wait_time = constant(0.01)

                @task(3)
                def browse(self):
                    self.client.get("/ok", timeout=1)

                @task(1)
                def checkout(self):
                    self.client.post("/status/500", timeout=1)
            """
        )
    )
    load = LoadSpec.model_validate({"users": 4, "spawnRate": 100, "locustfile": "loadtests/shop.py"})
    finished = run_load(load, server.url, tmp_path / "trial", 3.0, experiment_dir=experiment_dir)

    requests, failures = locust_total(finished.trial)
    assert total(finished, "requests") == requests > 50
    assert total(finished, "http_5xx") == failures > 0
    # The server saw every failed checkout, plus at most one a user cut off by the stop.
    assert failures <= server.count("/status/500") <= failures + load.users
    assert total(finished, "other") == total(finished, "reset") == 0
    assert max(row.users for row in finished.rows) == load.users


def test_two_processes_merge_and_listen_on_loopback_only(server: LoadTestServer, tmp_path: Path) -> None:
    load = LoadSpec.model_validate(
        {"users": 6, "spawnRate": 100, "waitTime": {"min": "10ms", "max": "20ms"}, "processes": 2}
    )
    listening: list[str] = []

    def check_sockets(run: LoadRun) -> None:
        assert run.pid is not None
        processes = group_processes(run.pid)
        assert len(processes) == 3  # master and two workers
        for process in processes:
            for connection in process.net_connections(kind="inet"):
                if connection.status == psutil.CONN_LISTEN:
                    listening.append(connection.laddr.ip)

    finished = run_load(load, server.url, tmp_path / "trial", 3.0, during=check_sockets)

    assert listening, "the master's port must show up: the check has to see something"
    assert set(listening) == {"127.0.0.1"}
    streams = sorted((finished.trial / "locust_stream").glob("*.jsonl"))
    assert len(streams) == 2
    requests, _ = locust_total(finished.trial)
    assert total(finished, "requests") == requests > 100
    assert max(row.users for row in finished.rows) == load.users  # 3 + 3, merged
    assert_no_process_left(finished.run)


def test_locust_crash_raises_load_error_and_takes_its_workers_along(server: LoadTestServer, tmp_path: Path) -> None:
    load = LoadSpec.model_validate({"users": 2, "spawnRate": 100, "timeout": "500ms", "processes": 2})
    run = LoadRun(load, server.url, BUCKET, tmp_path / "trial", seed=1, experiment_dir=tmp_path)
    run.start()
    try:
        assert run.pid is not None
        rows = []
        deadline = time.monotonic() + 20
        while not rows and time.monotonic() < deadline:
            rows += run.poll()
            time.sleep(0.05)
        assert rows
        os.kill(run.pid, signal.SIGKILL)  # the master dies without any cleanup
        with pytest.raises(LoadError, match="Locust exited with code -9") as raised:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                run.poll()
                time.sleep(0.05)
        assert "locust.log" in str(raised.value)
    finally:
        run.close()
    # The workers die with their master (parent-death signal), not minutes later.
    assert_no_process_left(run)
    assert len(read_load_csv(tmp_path / "trial")) >= len(rows), "rows read before the crash are kept"


def test_broken_or_missing_locustfile_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("from locust import HttpUser\nraise RuntimeError('no config for the shop')\n")
    load = LoadSpec.model_validate({"locustfile": "broken.py"})
    run = LoadRun(load, "http://127.0.0.1:9", BUCKET, tmp_path / "trial", seed=1, experiment_dir=tmp_path)
    with pytest.raises(LoadError, match="no config for the shop"):
        run.start()
    assert_no_process_left(run)

    missing = LoadSpec.model_validate({"locustfile": "nope/shop.py"})
    run = LoadRun(missing, "http://127.0.0.1:9", BUCKET, tmp_path / "trial2", seed=1, experiment_dir=tmp_path)
    with pytest.raises(LoadError, match=r"load.locustfile: .*nope/shop.py does not exist"):
        run.start()
    assert run.pid is None
