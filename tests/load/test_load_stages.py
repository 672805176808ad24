"""`load.stages` and a person's own LoadTestShape, through real Locust and `LoadRun`.

What a person relies on: the users follow the stages on the measurement's clock (the
level before them is `load.users`, the last stage holds), load.csv records the users of
every bucket, and a locustfile with its own LoadTestShape still decides the users.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

from load_helpers import LoadTestServer, run_load

from chaoslab.load.config import StageConfig, stage_target
from chaoslab.spec import LoadSpec

# The stop takes up to one shape tick (1 s) and the last bucket starts up to one bucket
# before it.
STOP_SLACK_S = 1.5


def test_stage_target_steps_through_the_stages_and_holds_the_last() -> None:
    stages = (StageConfig(5.0, 10, 2.0), StageConfig(3.0, 40, 100.0))
    before = (2, 1.0)
    assert stage_target(stages, -0.1, before) == (2, 1.0)
    assert stage_target(stages, 0.0, before) == (10, 2.0)
    assert stage_target(stages, 4.99, before) == (10, 2.0)
    assert stage_target(stages, 5.0, before) == (40, 100.0)
    assert stage_target(stages, 60.0, before) == (40, 100.0)
    assert stage_target((), 3.0, before) == (2, 1.0)


def test_users_follow_the_stages_from_their_start(server: LoadTestServer, tmp_path: Path) -> None:
    load = LoadSpec.model_validate(
        {
            "users": 2,
            "spawnRate": 100,
            "waitTime": {"min": "20ms", "max": "40ms"},
            "requests": [{"path": "/ok"}],
            "stages": [{"duration": "4s", "users": 7}, {"duration": "3s", "users": 1, "spawnRate": 50}],
        }
    )
    stages_start = time.time() + 4.0  # Locust takes 1-3 s to start; the warmup level first
    finished = run_load(load, server.url, tmp_path / "trial", 14.0, stages_start=stages_start)
    stopped = time.time()
    # Every bucket carries the users running when it closed, requests or not (a busy
    # machine can leave buckets empty when answers come too late for their bucket).
    rows = finished.rows
    seen = [(round(row.ts - stages_start, 1), row.users, row.requests) for row in finished.rows]
    before = [row.users for row in rows if row.ts < stages_start - 0.2]
    first = [row.users for row in rows if stages_start + 1.5 <= row.ts < stages_start + 3.9]
    last = [row.users for row in rows if row.ts >= stages_start + 6.0]
    assert before and set(before) == {2}, seen
    # The shape ticks once a second: by 1.5 s into a stage its users are running.
    assert first and set(first) == {7}, seen
    assert last and set(last) == {1}, seen
    # Nothing measured is lost at the stop: the buckets go on to the moment Locust was
    # stopped (SIGTERM during a shape used to kill it before the listener's last flush).
    assert rows[-1].ts >= stopped - STOP_SLACK_S, (rows[-1].ts - stages_start, stopped - stages_start)


def test_own_load_test_shape_still_decides_the_users(server: LoadTestServer, tmp_path: Path) -> None:
    locustfile = tmp_path / "shaped.py"
    locustfile.write_text(
        textwrap.dedent(
            """
            from locust import HttpUser, LoadTestShape, constant, task

            class Web(HttpUser):
                wait_time = constant(0.02)

                @task
                def ok(self):
                    self.client.get("/ok")

            class TwoThenFive(LoadTestShape):
                def tick(self):
                    return (2, 100) if self.get_run_time() < 3 else (5, 100)
            """
        )
    )
    load = LoadSpec.model_validate({"users": 9, "locustfile": "shaped.py"})
    finished = run_load(load, server.url, tmp_path / "trial", 8.0, experiment_dir=tmp_path)
    users = [row.users for row in finished.rows if row.requests]
    assert 2 in users and 5 in users, users
    assert 9 not in users, "load.users does not override the locustfile's own shape"
