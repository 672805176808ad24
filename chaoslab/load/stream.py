"""Both ends of the JSON-lines stream that carries load buckets from Locust to the engine.

A request belongs to the bucket in which it *started* (docs/results.md, load.csv), so a
bucket is complete only once no request that started in it can still be in flight: its
end plus `load.timeout` plus a margin. Each Locust process aggregates its own requests
(`BucketAggregator`) and writes its complete buckets; the engine merges the buckets of the
same start time from every process (`StreamMerger`): counts add up, latency histograms
merge, and only then are percentiles computed.

Channel: one append-only JSON-lines file per Locust process, `<stream_dir>/<pid>.jsonl`,
tailed by the engine. Files need no port and no extra thread in Locust, survive a crash of
either side (a partial run stays readable), and keep the raw per-process data for later.

Records, one JSON object per line, told apart by `type`:

  hello     {"type": "hello", "pid": 4242, "ts": 1795000000.0}  the listener is loaded
  start     {"type": "start", "ts": ...}  the test started (users are spawning)
  bucket    {"type": "bucket", "idx": 17950000001, "users": 20, "requests": 31,
             "refused": 0, "reset": 0, "timeout": 0, "http_5xx": 0, "other": 0,
             "hist": [[bin, count], ...], "max_ms": 7.9, "late": false}
            bucket `idx` starts at `idx * bucket` (epoch s); `hist` holds successful
            requests' latencies (see histogram.py); `late` marks requests that completed
            after their bucket had been written (see `BucketAggregator`)
  progress  {"type": "progress", "ts": ..., "done": 350, "failed": 2, "users": 20,
             "watermark": 17950000004}
            written every tick: requests completed since the previous progress record
            (by completion time, for the live view) and the watermark: every bucket
            below it has been written, now or never
  end       {"type": "end", "ts": ...}  the process is quitting; nothing follows

Pure Python, no locust: the aggregator runs inside Locust's listener, the merger inside
the engine, and both are unit-tested on their own.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from chaoslab.load.failures import FAILURE_CLASSES
from chaoslab.load.histogram import LatencyHistogram

LOAD_COLUMNS = (
    "ts",
    "users",
    "requests",
    "failures",
    "refused",
    "reset",
    "timeout",
    "http_5xx",
    "other",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
)
"""The columns of load.csv, in order (docs/results.md)."""

_CLASS_INDEX = {name: i for i, name in enumerate(FAILURE_CLASSES)}


def bucket_index(ts: float, bucket: float) -> int:
    """The index of the bucket holding epoch time `ts`; bucket `i` starts at `i * bucket`."""
    return math.floor(ts / bucket)


def bucket_start(index: int, bucket: float) -> float:
    """Epoch start of bucket `index`, rounded to the microsecond."""
    return round(index * bucket, 6)


@dataclass(frozen=True)
class Bucket:
    """One row of load.csv: the requests that started in `[ts, ts + bucket)`, all processes.

    Latencies (ms) are of successful requests and None when there were none.
    """

    ts: float
    users: int
    requests: int
    failures: int
    refused: int
    reset: int
    timeout: int
    http_5xx: int
    other: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    def csv_cells(self) -> list[str]:
        """The row as load.csv cells, in `LOAD_COLUMNS` order; missing values are empty."""
        return [_cell(getattr(self, name)) for name in LOAD_COLUMNS]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)


@dataclass(frozen=True)
class LiveStats:
    """What the load looks like right now, for a status line.

    requests_per_s and error_rate count requests by completion time over the last
    `window_s` seconds (shorter right after the start); error_rate is None when no
    request completed in that window.
    """

    ts: float
    users: int
    requests_per_s: float
    error_rate: float | None
    window_s: float


# --- writer side (inside each Locust process) ----------------------------------------


class _Counts:
    """Requests of one bucket in one process."""

    __slots__ = ("requests", "failures", "histogram")

    def __init__(self) -> None:
        self.requests = 0
        self.failures = [0] * len(FAILURE_CLASSES)
        self.histogram = LatencyHistogram()


class BucketAggregator:
    """Aggregates one Locust process's requests into buckets and says which are complete.

    `horizon` is how long after a bucket's end a request that started in it may still
    complete: the connect plus the read timeout (twice `load.timeout`) plus a margin for
    the event loop. A request that completes even later (an overloaded event loop) is
    kept as a `late` bucket record; the merger counts it in `late_requests` and the
    runner logs a warning, because its bucket has already been written to load.csv.
    """

    def __init__(self, bucket: float, horizon: float) -> None:
        if bucket <= 0 or horizon < 0:
            raise ValueError(f"expected bucket > 0 and horizon >= 0, got {bucket}, {horizon}")
        self.bucket = bucket
        self.horizon = horizon
        self._open: dict[int, _Counts] = {}
        self._late: dict[int, _Counts] = {}
        self._next: int | None = None  # first bucket not written yet; None before the first
        self._users: deque[tuple[int, int]] = deque()  # (bucket of the sample, users), in time order
        self._carry_users = 0
        self._done = 0
        self._failed = 0

    def record(self, start: float, response_time_ms: float, failure: str | None) -> None:
        """Count one completed request that started at epoch `start` (hot path)."""
        index = math.floor(start / self.bucket)
        if self._next is not None and index < self._next:
            table = self._late
        else:
            table = self._open
        counts = table.get(index)
        if counts is None:
            counts = table[index] = _Counts()
        counts.requests += 1
        self._done += 1
        if failure is None:
            counts.histogram.add(response_time_ms)
        else:
            counts.failures[_CLASS_INDEX[failure]] += 1
            self._failed += 1

    def note_users(self, now: float, users: int) -> None:
        """Sample the running user count at epoch `now`.

        A bucket's `users` is the first sample taken after the bucket ended (the users
        running when it closed; during a ramp-up, the count it reached), or the latest
        earlier sample when there is none (at the end of a run).
        """
        index = math.floor(now / self.bucket)
        if not self._users or self._users[-1][0] != index:  # the first sample of a bucket
            self._users.append((index, users))

    def flush(self, now: float, users: int) -> list[dict[str, Any]]:
        """The records to write at epoch `now`: late buckets, complete buckets, progress."""
        self.note_users(now, users)
        records = self._late_records()
        complete_below = math.floor((now - self.horizon) / self.bucket)
        if self._next is None and self._open:
            first = min(self._open)
            if first < complete_below:
                self._next = first
        if self._next is not None and self._next < complete_below:
            records.extend(self._bucket_records(self._next, complete_below))
            self._next = complete_below
        watermark = complete_below if self._next is None else max(self._next, complete_below)
        records.append(
            {
                "type": "progress",
                "ts": now,
                "done": self._done,
                "failed": self._failed,
                "users": users,
                "watermark": watermark,
            }
        )
        self._done = self._failed = 0
        return records

    def flush_all(self, now: float) -> list[dict[str, Any]]:
        """Every remaining bucket, complete or not, then `end`: the process is quitting.

        The user count is not sampled here: Locust has already stopped the users, which
        says nothing about the load the last buckets saw.
        """
        records = self._late_records()
        if self._open:
            first = min(self._open) if self._next is None else self._next
            last = max(max(self._open) + 1, math.floor((now - self.horizon) / self.bucket))
            records.extend(self._bucket_records(first, last))
            self._next = last
        records.append({"type": "end", "ts": now})
        return records

    def _late_records(self) -> list[dict[str, Any]]:
        records = [self._record(index, self._late[index], 0, late=True) for index in sorted(self._late)]
        self._late.clear()
        return records

    def _bucket_records(self, first: int, stop: int) -> list[dict[str, Any]]:
        records = []
        samples = self._users
        for index in range(first, stop):
            while samples and samples[0][0] <= index:
                self._carry_users = samples.popleft()[1]
            users = samples[0][1] if samples else self._carry_users
            counts = self._open.pop(index, None) or _Counts()
            records.append(self._record(index, counts, users, late=False))
        return records

    @staticmethod
    def _record(index: int, counts: _Counts, users: int, late: bool) -> dict[str, Any]:
        record: dict[str, Any] = {"type": "bucket", "idx": index, "users": users, "requests": counts.requests}
        for name, n in zip(FAILURE_CLASSES, counts.failures):
            record[name] = n
        record["hist"] = counts.histogram.to_wire()
        record["max_ms"] = counts.histogram.max_ms
        record["late"] = late
        return record


# --- reader side (inside the engine) ---------------------------------------------------


@dataclass
class _StreamState:
    pid: int | None = None
    started_at: float | None = None
    ended: bool = False
    watermark: int | None = None
    users: int = 0
    progress: deque[tuple[float, int, int]] = field(default_factory=deque)


class _Merged:
    __slots__ = ("users", "requests", "failures", "histogram")

    def __init__(self) -> None:
        self.users = 0
        self.requests = 0
        self.failures = [0] * len(FAILURE_CLASSES)
        self.histogram = LatencyHistogram()


class StreamMerger:
    """Merges the bucket streams of all Locust processes into load.csv rows.

    A bucket is released once every stream that has not ended has passed it (its
    watermark), and not before `expected_streams` streams have said hello (with
    `--processes N`, N workers). Rows run without gaps from the first bucket with a
    request to the last: a bucket nobody reported is a row with `requests = 0`.
    """

    # How much progress history to keep per stream (seconds); live views look back ~2 s.
    _PROGRESS_KEEP_S = 10.0

    def __init__(self, bucket: float, expected_streams: int) -> None:
        self.bucket = bucket
        self.expected_streams = expected_streams
        self.streams: dict[str, _StreamState] = {}
        self.late_requests = 0
        """Requests that arrived after their bucket's row had been written (not in load.csv)."""
        self._pending: dict[int, _Merged] = {}
        self._next: int | None = None
        self._last_users = 0

    def feed(self, stream: str, record: dict[str, Any]) -> None:
        """Take one record of `stream` (records of one stream in the order written)."""
        state = self.streams.setdefault(stream, _StreamState())
        kind = record.get("type")
        if kind == "bucket":
            self._add_bucket(record)
        elif kind == "progress":
            state.watermark = int(record["watermark"])
            state.users = int(record["users"])
            ts = float(record["ts"])
            state.progress.append((ts, int(record["done"]), int(record["failed"])))
            while state.progress and state.progress[0][0] < ts - self._PROGRESS_KEEP_S:
                state.progress.popleft()
        elif kind == "hello":
            state.pid = int(record["pid"])
        elif kind == "start":
            state.started_at = float(record["ts"])
        elif kind == "end":
            state.ended = True
            state.users = 0
        else:
            raise ValueError(f"unknown record type {kind!r}")

    @property
    def started_streams(self) -> int:
        """How many streams have reported the start of the test."""
        return sum(1 for s in self.streams.values() if s.started_at is not None)

    def open_streams(self) -> dict[str, int | None]:
        """Streams that have not ended, with the pid of the process writing them."""
        return {name: s.pid for name, s in self.streams.items() if not s.ended}

    def take_ready(self, final: bool = False) -> list[Bucket]:
        """The rows that are complete now, in time order, each returned once.

        final: the Locust processes are gone; release everything that is left.
        """
        if not self._pending:
            return []
        last = max(self._pending) + 1
        if final:
            stop = last
        else:
            if len(self.streams) < self.expected_streams:
                return []
            open_states = [s for s in self.streams.values() if not s.ended]
            if any(s.watermark is None for s in open_states):
                return []
            stop = min([last] + [s.watermark for s in open_states if s.watermark is not None])
        first = min(self._pending) if self._next is None else self._next
        rows = [self._row(index) for index in range(first, stop)]
        if stop > first:
            self._next = stop
        return rows

    def live(self, now: float, window: float) -> LiveStats:
        """Requests per second and error rate over the last `window` seconds before `now`."""
        starts = [s.started_at for s in self.streams.values() if s.started_at is not None]
        span = min(window, now - min(starts)) if starts else 0.0
        done = failed = 0
        for state in self.streams.values():
            for ts, n, f in state.progress:
                if now - window < ts <= now:
                    done += n
                    failed += f
        users = sum(s.users for s in self.streams.values() if not s.ended)
        return LiveStats(
            ts=now,
            users=users,
            requests_per_s=done / span if span > 0 else 0.0,
            error_rate=failed / done if done else None,
            window_s=max(span, 0.0),
        )

    def _add_bucket(self, record: dict[str, Any]) -> None:
        index = int(record["idx"])
        if self._next is not None and index < self._next:
            self.late_requests += int(record["requests"])
            return
        merged = self._pending.get(index)
        if merged is None:
            merged = self._pending[index] = _Merged()
        if not record.get("late"):
            merged.users += int(record["users"])
        merged.requests += int(record["requests"])
        for i, name in enumerate(FAILURE_CLASSES):
            merged.failures[i] += int(record[name])
        merged.histogram.merge(LatencyHistogram.from_wire(record["hist"], record["max_ms"]))

    def _row(self, index: int) -> Bucket:
        merged = self._pending.pop(index, None)
        if merged is None:  # nobody reported this bucket: a gap, kept visible
            merged = _Merged()
            merged.users = self._last_users
        self._last_users = merged.users
        histogram = merged.histogram
        return Bucket(
            ts=bucket_start(index, self.bucket),
            users=merged.users,
            requests=merged.requests,
            failures=sum(merged.failures),
            **{name: merged.failures[i] for name, i in _CLASS_INDEX.items()},
            p50_ms=histogram.quantile(0.5),
            p95_ms=histogram.quantile(0.95),
            p99_ms=histogram.quantile(0.99),
            max_ms=histogram.max_ms,
        )
