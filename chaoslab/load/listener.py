"""Our request listener inside Locust: buckets every request and streams them to the engine.

Locust's own statistics are 10 s rolling averages that miss the last second; a chaos run
needs what happened in each 100 ms. This module hooks `events.request` and counts each
request in the bucket of its start time (`stream.BucketAggregator`), classifying failures
(`failures.classify_failure`). A greenlet writes complete buckets and a progress record
every tick to this process's JSON-lines stream (see stream.py for the format).

It is a locustfile that defines no User class, loaded beside the users:
`locust -f <users>.py,chaoslab/load/listener.py` (our built-in users or a person's own
locustfile). With `--processes N` the master skips it (workers run the users) and every
worker writes its own stream, named by pid. Settings come from the JSON file named in
`CHAOSLAB_LOAD_CONFIG` (config.py).

It also writes Locust's own locust_stats.csv and locust_failures.csv one last time at
quit (in the process that owns the statistics: the master, or the only process): Locust
refreshes them once a second and not at shutdown, so they would miss the last second.
"""

from __future__ import annotations

import locust  # noqa: F401  (first: gevent must monkey-patch before anything else loads)

import csv
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import IO, Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, Runner, WorkerRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

from chaoslab.load.config import LocustConfig
from chaoslab.load.failures import classify_failure
from chaoslab.load.lifetime import ParentDeathSignal
from chaoslab.load.stream import BucketAggregator

FLUSH_MARGIN_S = 0.5
"""Slack after `load.timeout` before a bucket counts as complete: the event loop may be
busy for a while before a finished request's event fires (one core, thousands of users)."""

# How often the flusher runs: once a bucket, but at least every 250 ms for a fresh live
# view and at most every 50 ms to keep its cost negligible next to the users.
_TICK_MIN_S = 0.05
_TICK_MAX_S = 0.25

_log = logging.getLogger("chaoslab.load.listener")


class _Recorder:
    """One Locust process's side of the stream: aggregator, output file, flusher."""

    def __init__(self, config: LocustConfig, runner: Runner, stream: IO[str]) -> None:
        self._runner = runner
        self._stream = stream
        # A request may spend `timeout` connecting and then `timeout` waiting for the answer
        # (FastHttpUser's connection_timeout and network_timeout are both load.timeout), so
        # a bucket can still receive requests until twice the timeout after it ends.
        self._aggregator = BucketAggregator(config.bucket, 2 * config.timeout + FLUSH_MARGIN_S)
        self._tick = min(max(config.bucket, _TICK_MIN_S), _TICK_MAX_S)
        self._closed = False

    def on_request(
        self,
        response_time: float,
        exception: BaseException | None = None,
        response: object = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        # FastHttpUser and HttpUser pass start_time (epoch s); other clients may not.
        start = start_time if start_time is not None else time.time() - response_time / 1000.0
        failure = None if exception is None else classify_failure(exception, response)
        self._aggregator.record(start, response_time, failure)

    def on_test_start(self, **_: Any) -> None:
        self.write([{"type": "start", "ts": time.time()}])

    def on_quit(self, **_: Any) -> None:
        self.close()

    def run_flusher(self) -> None:
        try:
            while not self._closed:
                gevent.sleep(self._tick)
                if not self._closed:
                    self.write(self._aggregator.flush(time.time(), self._runner.user_count))
        except Exception:
            # The engine would see a silent stream: stop this process loudly instead.
            _log.exception("chaoslab listener: writing the load stream failed; stopping Locust")
            self._runner.environment.process_exit_code = 2
            self._runner.quit()
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.write(self._aggregator.flush_all(time.time()))
        self._stream.close()

    def write(self, records: list[dict[str, Any]]) -> None:
        if records:
            self._stream.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
            self._stream.flush()


class _FinalLocustCsv:
    """Rewrites Locust's own request and failure CSVs with their final numbers at quit."""

    def __init__(self, environment: Environment, prefix: str) -> None:
        self._writer = StatsCSV(environment, PERCENTILES_TO_REPORT)
        self._prefix = prefix

    def on_quit(self, **_: Any) -> None:
        self._replace(Path(f"{self._prefix}_stats.csv"), self._writer.requests_csv)
        self._replace(Path(f"{self._prefix}_failures.csv"), self._writer.failures_csv)

    @staticmethod
    def _replace(path: Path, write_rows: Any) -> None:
        # A new file renamed over the old one: Locust's still-open handle keeps the old one.
        partial = path.with_name(path.name + ".partial")
        with partial.open("w", newline="", encoding="utf-8") as handle:
            write_rows(csv.writer(handle))
        partial.replace(path)


def _quit_on_sigterm_during_a_shape(environment: Environment, runner: Runner) -> None:
    """A graceful quit on SIGTERM while a LoadTestShape runs (`load.stages`, or a user's).

    Headless with a shape, Locust joins the shape's greenlet before it installs its own
    SIGTERM handler (locust/main.py, 2.x), so until the shape ends SIGTERM kills it with
    the default action: no `quit` event, and the buckets the listener still held (the
    last 2 x load.timeout) and Locust's final CSVs were lost. Quitting the runner ends the
    shape and lets Locust shut down as usual; its own handler replaces this one then.
    """
    if environment.shape_class is not None and not isinstance(runner, WorkerRunner):
        gevent.signal_handler(signal.SIGTERM, runner.quit)


@events.init.add_listener
def _on_init(environment: Environment, runner: Runner, **_: Any) -> None:
    config = LocustConfig.from_environment(os.environ)
    _quit_on_sigterm_during_a_shape(environment, runner)
    if config.locust_csv_prefix and not isinstance(runner, WorkerRunner):
        environment.events.quit.add_listener(_FinalLocustCsv(environment, config.locust_csv_prefix).on_quit)
    if isinstance(runner, MasterRunner):
        return  # workers run the users and write the streams
    if isinstance(runner, WorkerRunner):
        ParentDeathSignal()()  # a worker forked by `--processes` dies with its master
    path = Path(config.stream_dir) / f"{os.getpid()}.jsonl"
    recorder = _Recorder(config, runner, path.open("a", encoding="utf-8"))
    recorder.write([{"type": "hello", "pid": os.getpid(), "ts": time.time()}])
    environment.events.request.add_listener(recorder.on_request)
    environment.events.test_start.add_listener(recorder.on_test_start)
    environment.events.quit.add_listener(recorder.on_quit)
    gevent.spawn(recorder.run_flusher)
