"""The data-integrity metrics (chaoslab/analysis/integrity.py, re-exported by analysis): exact counts on
hand-built integrity tables, and the lost-writes budget in the verdict."""

from __future__ import annotations

import math

import pandas as pd

from chaoslab import analysis
from chaoslab.load.integrity import INTEGRITY_COLUMNS
from chaoslab.spec import MeasureSpec

A = ("db-0", "node-1", "vol-a", 1)  # the identity before the fault
A2 = ("db-0", "node-2", "vol-a", 2)  # same name and volume, restarted elsewhere
B = ("db-0", "node-2", "vol-b", 1)  # same name, a new (empty) volume
NONE = ("", "", "", "")


def rows(*entries: tuple) -> pd.DataFrame:
    """(ts, op, key, outcome, identity) -> an integrity.csv frame."""
    data = [
        {"ts": ts, "op": op, "key": key, "ordinal": 0, "outcome": outcome, "pod": who[0], "node": who[1], "volume": who[2], "starts": who[3]}
        for ts, op, key, outcome, who in entries
    ]
    return pd.DataFrame(data, columns=list(INTEGRITY_COLUMNS))


def test_only_acknowledged_writes_count_and_only_a_missing_read_back_loses_one() -> None:
    frame = rows(
        (1.0, "write", "k1", "acked", A),
        (2.0, "write", "k2", "acked", A),
        (3.0, "write", "k3", "failed", NONE),  # never acknowledged: never lost
        (4.0, "write", "k4", "acked", A),
        (6.0, "read", "k1", "missing", B),
        (6.1, "read", "k2", "found", B),
        (6.2, "read", "k3", "missing", B),
        (6.3, "read", "k2", "stale", B),
        (7.0, "read", "k4", "missing", B),
        (7.5, "read", "k4", "found", B),  # the latest read decides
    )
    assert analysis.acknowledged_writes(frame) == 3
    assert analysis.lost_keys(frame) == ["k1"]
    assert analysis.lost_writes(frame) == 1
    assert analysis.stale_reads(frame) == 1


def test_writes_over_time_counts_losses_at_their_acknowledgement() -> None:
    frame = rows(
        (10.2, "write", "k1", "acked", A),
        (10.7, "write", "k2", "acked", A),
        (11.5, "write", "k3", "acked", B),
        (12.0, "read", "k1", "missing", B),
        (12.1, "read", "k3", "found", B),
    )
    table = analysis.writes_over_time(frame, measure_start=10.0, step=1.0)
    assert table.to_dict("list") == {"t_s": [1.0, 2.0], "acknowledged_writes": [2, 3], "lost_writes": [1, 1]}


def test_identity_kept_and_the_time_it_took() -> None:
    same_volume = rows((9.0, "read", "k", "found", A), (10.5, "read", "k", "failed", NONE), (12.0, "read", "k", "found", A2))
    outcome = analysis.identity_outcome(same_volume, fault_ts=10.0, window_end=20.0)
    assert outcome.identity_kept == 1.0 and outcome.time_to_same_identity_s == 2.0

    new_volume = rows((9.0, "read", "k", "found", A), (11.0, "read", "k", "missing", B))
    outcome = analysis.identity_outcome(new_volume, fault_ts=10.0, window_end=20.0)
    assert outcome.identity_kept == 0.0 and math.isnan(outcome.time_to_same_identity_s)

    never_interrupted = rows((9.0, "read", "k", "found", A), (10.3, "read", "k", "found", A))
    assert math.isclose(analysis.identity_outcome(never_interrupted, 10.0, 20.0).time_to_same_identity_s, 0.3)
    nothing_after = analysis.identity_outcome(rows((9.0, "read", "k", "found", A)), 10.0, 20.0)
    assert math.isnan(nothing_after.identity_kept) and math.isnan(nothing_after.time_to_same_identity_s)


def test_identity_timeline_has_one_row_per_incarnation() -> None:
    frame = rows(
        (1.0, "write", "k1", "acked", A),
        (2.0, "read", "k1", "found", A),
        (3.0, "read", "k1", "failed", NONE),
        (4.0, "read", "k1", "found", A2),
        (5.0, "read", "k1", "found", A2),
    )
    timeline = analysis.identity_timeline(frame)
    assert timeline[["node", "starts", "start_ts", "end_ts"]].to_dict("list") == {
        "node": ["node-1", "node-2"],
        "starts": [1, 2],
        "start_ts": [1.0, 4.0],
        "end_ts": [2.0, 5.0],
    }


def _summary(lost: float, acked: float = 10.0) -> pd.DataFrame:
    return pd.DataFrame(
        [{"trial": "p01-t1", "status": "completed", "availability": 1.0, "fault_id": None, "lost_writes": lost, "acknowledged_writes": acked}]
    )


def test_the_verdict_honours_max_lost_writes() -> None:
    assert analysis.verdict(_summary(0.0), MeasureSpec(max_lost_writes=0)).passed
    assert analysis.verdict(_summary(3.0), MeasureSpec(max_lost_writes=3)).passed
    missed = analysis.verdict(_summary(4.0), MeasureSpec(max_lost_writes=3))
    assert missed.reasons == ("p01-t1: lost 4 of 10 acknowledged writes, above measure.maxLostWrites 3",)
    unknown = analysis.verdict(_summary(math.nan), MeasureSpec(max_lost_writes=0))
    assert not unknown.passed and "no data-integrity record" in unknown.reasons[0]
    # Without a budget, lost writes are reported, not judged.
    assert analysis.verdict(_summary(4.0), MeasureSpec()).passed


def test_a_trial_whose_engine_died_is_read_from_the_locust_parts(tmp_path) -> None:
    from chaoslab.load.integrity import INTEGRITY_CSV, merge_parts
    from chaoslab.results import read_integrity

    stream = tmp_path / "locust_stream"
    stream.mkdir()
    header = ",".join(INTEGRITY_COLUMNS) + "\n"
    (stream / "integrity-11.csv").write_text(header + "2.0,write,k2,0,acked,db-0,n,v,1\n", encoding="utf-8")
    # A killed process leaves a torn last line: dropped.
    (stream / "integrity-12.csv").write_text(header + "1.0,write,k1,0,acked,db-0,n,v,1\n3.0,read,k1,0,mis", encoding="utf-8")
    frame = read_integrity(tmp_path)
    assert list(frame["key"]) == ["k1", "k2"] and analysis.acknowledged_writes(frame) == 2
    assert merge_parts(stream, tmp_path / INTEGRITY_CSV) == 2
    assert list(read_integrity(tmp_path)["key"]) == ["k1", "k2"]
    assert read_integrity(tmp_path / "nowhere") is None
