"""The bucket stream without Locust: when a bucket is complete, and how streams merge.

The records pass through JSON as on the wire, so what is tested is what the engine reads.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chaoslab.load.stream import BucketAggregator, StreamMerger, bucket_start

BUCKET = 0.1
HORIZON = 0.5  # load.timeout + margin, small to keep the numbers readable
T0 = 1_795_000_000.0  # a bucket boundary


def wire(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(json.dumps(r)) for r in records]


def buckets(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == "bucket"]


def feed(merger: StreamMerger, stream: str, records: list[dict[str, Any]]) -> None:
    for record in wire(records):
        merger.feed(stream, record)


def test_a_request_counts_where_it_started_and_its_bucket_waits_for_the_horizon() -> None:
    aggregator = BucketAggregator(BUCKET, HORIZON)
    aggregator.record(T0 + 0.05, 2.0, None)
    aggregator.record(T0 + 0.06, 450.0, "timeout")  # completes 0.45 s later, same bucket
    aggregator.record(T0 + 0.35, 3.0, "http_5xx")
    # At T0 + 0.55 the first bucket may still get a request that started in it.
    assert buckets(aggregator.flush(T0 + 0.55, users=4)) == []
    written = buckets(aggregator.flush(T0 + 0.95, users=4))
    assert [r["idx"] for r in written] == [round(T0 / BUCKET) + i for i in range(4)]  # gaps included
    assert [r["requests"] for r in written] == [2, 0, 0, 1]
    assert written[0]["timeout"] == 1 and written[3]["http_5xx"] == 1
    assert all(r["users"] == 4 for r in written)


def test_a_request_later_than_the_horizon_is_kept_as_late() -> None:
    aggregator = BucketAggregator(BUCKET, HORIZON)
    aggregator.record(T0 + 0.01, 1.0, None)
    aggregator.flush(T0 + 0.7, users=1)
    aggregator.record(T0 + 0.02, 900.0, "reset")  # its bucket has been written
    late = buckets(aggregator.flush(T0 + 0.8, users=1))
    assert late[0]["late"] and late[0]["reset"] == 1 and late[0]["idx"] == round(T0 / BUCKET)


def test_flush_all_writes_the_unfinished_buckets_then_end() -> None:
    aggregator = BucketAggregator(BUCKET, HORIZON)
    aggregator.record(T0 + 0.01, 1.0, None)
    aggregator.flush(T0 + 0.05, users=3)
    aggregator.record(T0 + 0.21, 1.0, None)
    records = aggregator.flush_all(T0 + 0.25)
    assert [r["requests"] for r in buckets(records)] == [1, 0, 1]
    assert [r["users"] for r in buckets(records)] == [3, 3, 3]  # not the 0 users after a stop
    assert records[-1]["type"] == "end"


def test_merged_rows_wait_for_every_stream_and_add_up() -> None:
    merger = StreamMerger(BUCKET, expected_streams=2)
    first, second = BucketAggregator(BUCKET, HORIZON), BucketAggregator(BUCKET, HORIZON)
    for i in range(90):
        first.record(T0 + 0.01, 1.0, None)
    for i in range(10):
        second.record(T0 + 0.02, 100.0, None)
    second.record(T0 + 0.03, 5.0, "refused")
    feed(merger, "a.jsonl", [{"type": "hello", "pid": 1, "ts": T0}, *first.flush(T0 + 0.7, users=3)])
    assert merger.take_ready() == []  # the second stream has not said anything yet
    feed(merger, "b.jsonl", [{"type": "hello", "pid": 2, "ts": T0}, *second.flush(T0 + 0.65, users=2)])
    rows = merger.take_ready()
    assert len(rows) == 1  # the second stream's watermark is one bucket behind the first's
    row = rows[0]
    assert row.ts == T0 and row.users == 5
    assert (row.requests, row.failures, row.refused) == (101, 1, 1)
    assert row.p50_ms == pytest.approx(1.0, rel=0.01) and row.p95_ms == pytest.approx(100.0, rel=0.01)
    assert row.max_ms == 100.0
    assert merger.take_ready() == []  # each row once


def test_final_release_fills_gaps_and_keeps_time_order() -> None:
    merger = StreamMerger(BUCKET, expected_streams=1)
    merger.feed("a.jsonl", {"type": "hello", "pid": 1, "ts": T0})
    for idx, n in ((0, 3), (3, 2)):  # a writer that skipped buckets 1 and 2
        record = {"type": "bucket", "idx": round(T0 / BUCKET) + idx, "users": 7, "requests": n, "hist": [],
                  "max_ms": None, "late": False, "refused": 0, "reset": n, "timeout": 0, "http_5xx": 0, "other": 0}
        merger.feed("a.jsonl", record)
    rows = merger.take_ready(final=True)
    assert [r.requests for r in rows] == [3, 0, 0, 2]
    assert [r.ts for r in rows] == [bucket_start(round(T0 / BUCKET) + i, BUCKET) for i in range(4)]
    assert rows[1].users == 7 and rows[1].p50_ms is None


def test_live_counts_completions_over_the_window() -> None:
    merger = StreamMerger(BUCKET, expected_streams=1)
    merger.feed("a.jsonl", {"type": "start", "ts": T0})
    for k in range(1, 11):  # 10 progress records, 0.25 s apart, 50 done and 5 failed each
        merger.feed("a.jsonl", {"type": "progress", "ts": T0 + 0.25 * k, "done": 50, "failed": 5,
                                "users": 12, "watermark": 0})
    live = merger.live(now=T0 + 2.5, window=2.0)
    assert live.requests_per_s == pytest.approx(8 * 50 / 2.0)
    assert live.error_rate == pytest.approx(0.1) and live.users == 12
    early = merger.live(now=T0 + 0.5, window=2.0)  # half a second after the start
    assert early.window_s == pytest.approx(0.5) and early.requests_per_s == pytest.approx(100 / 0.5)
