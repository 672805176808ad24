"""statefulset-pod-delete: a claim keeps every acknowledged write; an emptyDir loses exactly
those acknowledged before its pod went. The ground truth for `lost_writes`."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from chaoslab import analysis, charts_data
from tests.experiments.lessons import events_of, fault_times, summary_rows, trials_by

pytestmark = pytest.mark.slow

# A shorter run writes less before the delete, so each logged write costs more to replay
# (40 ms, not 10): the replay then outweighs the 1 s readiness-probe period's jitter.
SHORT = (
    "--set", "workload.app.replayMsPerWrite=40",
    "--set", "timeline.warmup=1s",
    "--set", "faults.0.at=4s",
    "--set", "timeline.duration=14s",
)


def test_a_claim_loses_nothing_and_an_empty_dir_loses_exactly_the_deleted_pods_writes(run_lesson) -> None:
    # Exit 1: the emptyDir point misses measure.maxLostWrites: 0, as the lesson says.
    run = run_lesson("statefulset-pod-delete.yaml", *SHORT, exit_codes=(1,))
    trials = trials_by(run, "workload.volume.type")
    summary = summary_rows(run).set_index("workload.volume.type")

    claim, empty = trials["volumeClaimTemplate"], trials["emptyDir"]
    for trial in (claim, empty):
        assert trial.integrity is not None and analysis.acknowledged_writes(trial.integrity) > 20

    # With the claim: nothing acknowledged is lost, though every key written before the
    # delete was read back after db-0 returned, from the same volume.
    (deleted_at,) = fault_times(claim)
    assert analysis.lost_writes(claim.integrity) == 0
    assert summary.loc["volumeClaimTemplate", "lost_writes"] == 0
    assert summary.loc["volumeClaimTemplate", "identity_kept"] == 1
    assert not math.isnan(summary.loc["volumeClaimTemplate", "time_to_same_identity_s"])
    assert _read_back_after(claim, deleted_at) >= set(_acked_before(claim, deleted_at))

    # With the emptyDir: lost is exactly the set of keys acknowledged before the old db-0
    # was gone (its pod_deleted event), and each of those was read back as missing.
    gone = float(events_of(empty, "pod_deleted").query("name == 'db-0'")["ts"].iloc[0])
    expected = _acked_before(empty, gone)
    assert expected, "writes were acknowledged before the delete"
    assert analysis.lost_keys(empty.integrity) == expected
    assert summary.loc["emptyDir", "lost_writes"] == len(expected)
    assert summary.loc["emptyDir", "identity_kept"] == 0
    assert math.isnan(summary.loc["emptyDir", "time_to_same_identity_s"])

    # Replaying the log costs start-up time: the claim's db-0 took longer to come back.
    assert summary.loc["volumeClaimTemplate", "time_to_recover_s"] > summary.loc["emptyDir", "time_to_recover_s"]
    assert run.journal["exit_code"] == 1
    assert any("above measure.maxLostWrites 0" in reason for reason in run.journal["verdict"])

    # The slides: lost against acknowledged per point, and who served with which volume.
    table = analysis.summary_table(run)
    lost_bars = charts_data.writes_chart(table, run).data[1]
    assert list(lost_bars.y) == [0, len(expected)]
    bars = [trace for trace in charts_data.identity_timeline_chart(run, table).data if trace.type == "bar"]
    claim_texts = [trace.text[0] for trace in bars if "volumeClaimTemplate" in trace.y[0]]
    assert len(claim_texts) == 2 and claim_texts[1].endswith("start 2")
    assert claim_texts[0].split(" · ")[1] == claim_texts[1].split(" · ")[1], "the same volume came back"
    page = (run.path / "report.html").read_text(encoding="utf-8")
    assert 'id="chart-6-identity"' in page and 'id="chart-7-writes"' in page
    assert "<th>lost writes<br>" in page, "the key numbers show the lost writes"


def _acked_before(trial, ts: float) -> list[str]:
    acked = analysis.acknowledged_keys(trial.integrity)
    return list(acked[acked < ts].index)


def _read_back_after(trial, ts: float) -> set[str]:
    rows = trial.integrity
    reads = rows[(rows["op"] == "read") & (pd.to_numeric(rows["ts"]) > ts) & (rows["outcome"] == "found")]
    return set(reads["key"])
