"""The data-integrity users: Locust users that write unique keys to one StatefulSet ordinal
and read acknowledged keys back, recording every answer (integrity.py's rows).

Loaded by path instead of the built-in locustfile when `load.dataIntegrity` is set; the
target URL is the ordinal's stable address (a per-ordinal Service), as a database client
talks to its primary. Each user:

- writes (weight `writeWeight`): `PUT /kv/<key>` with a key no one used before
  (`<worker>-<user>-<sequence>`) and the key's own token as its value; a 200 is an
  acknowledgement, recorded with the time the client got it. A write that failed or
  timed out was never acknowledged and is recorded as failed: it may or may not have
  landed, so it can never count as lost.
- reads back (weight `readWeight`): `GET /kv/<key>` of its own acknowledged keys, one
  after another round the list, so every acknowledged key is read again and again while
  the run lasts: found (the acknowledged value), stale (another value), missing (404).

A 404 is a correct answer of a reachable service, so it counts as a success in load.csv
(availability); the loss is counted from integrity.csv (analysis).
"""

from __future__ import annotations

import locust  # noqa: F401  (first: gevent must monkey-patch before anything else loads)

import csv
import os
import random
import time
from pathlib import Path
from typing import IO, Any

import gevent
from locust import FastHttpUser, events, task
from locust.env import Environment

from chaoslab.load.config import IntegrityConfig, LocustConfig
from chaoslab.load.integrity import INTEGRITY_COLUMNS
from chaoslab.load.locustfile import SingleAttemptClientPool

CONFIG = LocustConfig.from_environment(os.environ)
assert CONFIG.integrity is not None, "kvusers.py runs only with load.dataIntegrity"
INTEGRITY: IntegrityConfig = CONFIG.integrity


class _Rows:
    """This process's part of integrity.csv, flushed row by row."""

    def __init__(self) -> None:
        self._handle: IO[str] | None = None
        self._writer: Any = None

    def write(self, **row: Any) -> None:
        if self._writer is None:
            path = Path(INTEGRITY.out_dir) / f"integrity-{os.getpid()}.csv"
            self._handle = path.open("w", newline="", encoding="utf-8")
            self._writer = csv.DictWriter(self._handle, fieldnames=INTEGRITY_COLUMNS)
            self._writer.writeheader()
        self._writer.writerow(row)
        assert self._handle is not None
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


ROWS = _Rows()


class DataIntegrityUser(FastHttpUser):
    """A client of one ordinal of a chaoslab/kv StatefulSet."""

    host = CONFIG.target_url
    network_timeout = CONFIG.timeout
    connection_timeout = CONFIG.timeout
    max_retries = 0
    numbers = iter(range(1, 1_000_000_000))
    worker = 0

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        agent = self.client.client
        agent.clientpool = SingleAttemptClientPool(**agent.clientpool.client_args)
        self.number = next(DataIntegrityUser.numbers)
        self.sequence = 0
        self.acked: list[tuple[str, str]] = []
        self.cursor = 0
        self.identity: tuple[str, str, str] | None = None

    def on_start(self) -> None:
        self.rng = random.Random(f"{CONFIG.seed}:{DataIntegrityUser.worker}:{self.number}")
        gevent.sleep(self.rng.uniform(0.0, CONFIG.wait_max))

    def wait_time(self) -> float:
        return self.rng.uniform(CONFIG.wait_min, CONFIG.wait_max)

    @task(INTEGRITY.write_weight)
    def write(self) -> None:
        self.sequence += 1
        key = f"w{DataIntegrityUser.worker}-u{self.number}-{self.sequence}"
        value = f"{key}:{self.rng.getrandbits(32):08x}"
        with self.client.request("PUT", f"/kv/{key}", data=value, name="PUT /kv/[key]", catch_response=True) as answer:
            acked = answer.status_code == 200
            if not acked and answer.status_code and answer.status_code < 500:
                answer.failure(f"write refused: HTTP {answer.status_code}")
        if acked:
            self.acked.append((key, value))
        self._record("write", key, "acked" if acked else "failed", answer)

    @task(INTEGRITY.read_weight)
    def read(self) -> None:
        if not self.acked:
            self.write()
            return
        key, value = self.acked[self.cursor % len(self.acked)]
        self.cursor += 1
        with self.client.request("GET", f"/kv/{key}", name="GET /kv/[key]", catch_response=True) as answer:
            if answer.status_code == 404:
                answer.success()  # a correct answer; the loss is counted from integrity.csv
                outcome = "missing"
            elif answer.status_code == 200:
                outcome = "found" if _value_of(answer) == value else "stale"
            else:
                outcome = "failed"
        self._record("read", key, outcome, answer)

    def _record(self, op: str, key: str, outcome: str, answer: Any) -> None:
        headers = answer.headers if answer.status_code else {}
        if headers and headers.get("X-Chaoslab-Pod"):
            identity = tuple(headers.get(f"X-Chaoslab-{name}", "") for name in ("Pod", "Volume", "Starts"))
            if self.identity is not None and identity != self.identity:
                self.cursor = 0  # a new incarnation: check every acknowledged key again
            self.identity = identity  # type: ignore[assignment]
        ROWS.write(
            ts=f"{time.time():.4f}",
            op=op,
            key=key,
            ordinal=INTEGRITY.ordinal,
            outcome=outcome,
            pod=headers.get("X-Chaoslab-Pod", "") if headers else "",
            node=headers.get("X-Chaoslab-Node", "") if headers else "",
            volume=headers.get("X-Chaoslab-Volume", "") if headers else "",
            starts=headers.get("X-Chaoslab-Starts", "") if headers else "",
        )


def _value_of(answer: Any) -> str | None:
    try:
        return str(answer.json().get("value"))
    except (ValueError, AttributeError):
        return None


@events.test_start.add_listener
def _worker_index(environment: Environment, **_: Any) -> None:
    DataIntegrityUser.worker = max(0, getattr(environment.runner, "worker_index", 0))


@events.quit.add_listener
def _close(**_: Any) -> None:
    ROWS.close()
