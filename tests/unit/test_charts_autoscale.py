"""The autoscaling chart and summary columns, from a recorded run of experiments/autoscale-spike.yaml.

The fixture is a real sim run (2 points: maxReplicas 1 and 4; one trial each) on a busy
2-core machine: the HPA at maxReplicas=4 scaled 1 -> 2 once, 20.3 s after the spike.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from chaoslab import analysis
from chaoslab.charts_autoscale import autoscaling_chart
from chaoslab.report import build_report
from chaoslab.results import RunData, read_run

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "runs" / "autoscale-spike-20261201T215111Z"
LABELS = ["maxReplicas=1", "maxReplicas=4"]


@pytest.fixture(scope="module")
def run() -> RunData:
    return read_run(FIXTURE)


@pytest.fixture(scope="module")
def summary(run: RunData) -> pd.DataFrame:
    return analysis.summary_table(run)


@pytest.fixture(scope="module")
def figure(run: RunData, summary: pd.DataFrame) -> go.Figure:
    fig = autoscaling_chart(run, summary)
    assert fig is not None
    return fig


def traces(fig: go.Figure, meta: str) -> list:
    return [t for t in fig.data if t.meta == meta]


def test_summary_has_the_spike_and_the_autoscalers_answer(summary: pd.DataFrame) -> None:
    rows = summary.set_index("label")
    fixed, scaled = rows.loc["maxReplicas=1"], rows.loc["maxReplicas=4"]
    assert fixed["spike_s"] == scaled["spike_s"] == 20.0 and scaled["spike_users"] == 12
    assert math.isnan(fixed["first_scale_up_s"]) and math.isnan(fixed["peak_replicas"])
    assert scaled["first_scale_up_s"] == pytest.approx(20.3, abs=0.1)
    assert scaled["time_to_capacity_s"] == pytest.approx(22.0, abs=0.1)
    assert scaled["peak_replicas"] == 2 and scaled["predicted_first_scale_up_s"] == 45.0
    assert scaled["first_scale_up_s"] <= scaled["predicted_first_scale_up_s"]
    assert 0.99 < scaled["spike_availability"] <= 1 and scaled["p95_ms_spike"] > 0


def test_replicas_cpu_and_latency_panels(figure: go.Figure) -> None:
    assert figure.layout.title.text.startswith("Load from 2 to 12 users: how the autoscaler answered the load")
    desired = traces(figure, "desired")
    assert [t.name for t in desired] == LABELS
    assert max(desired[0].y) == 1 and max(desired[1].y) == 2
    assert all(t.line.shape == "hv" for t in desired)
    assert [t.yaxis for t in traces(figure, "utilization")] == ["y2", "y2"]
    # CPU utilisation as measured, in % of the request: above the 80 % target in the spike.
    assert np.nanmax(np.asarray(traces(figure, "utilization")[0].y, dtype=float)) == 154
    assert any(s.type == "line" and s.y0 == 80 and s.yref == "y2" for s in figure.layout.shapes)
    # The formula on the measured CPU: the fixed replica's HPA asked for 2 while it stayed at 1.
    expected = traces(figure, "expected")[0]
    assert max(v for v in expected.y if v == v) == 2
    scaled_expected = traces(figure, "expected")[1]
    assert max(v for v in scaled_expected.y if v == v) == 2
    # One hpa_scaled marker (dash-dot) on the replicas and on the latency panel.
    marks = [s for s in figure.layout.shapes if s.type == "line" and s.line.dash == "dashdot"]
    assert len(marks) == 2 and marks[0].x0 == pytest.approx(40.3, abs=0.1)
    assert [t.yaxis for t in traces(figure, "p95")] == ["y3", "y3"]
    assert [t.yaxis for t in traces(figure, "throughput")] == ["y4", "y4"]
    users = traces(figure, "users")
    assert len(users) == 2 and min(users[0].y) == 2 and max(users[0].y) == 12
    assert figure.layout.yaxis5.overlaying == "y"


def test_the_report_of_an_autoscaled_run_has_the_autoscaling_chart(tmp_path: Path) -> None:
    copy = tmp_path / FIXTURE.name
    shutil.copytree(FIXTURE, copy)
    result = build_report(copy, images=False)
    page = result.html.read_text(encoding="utf-8")
    assert 'id="chart-6-autoscaling"' in page
    assert "how the autoscaler answered the load" in page
    # The key numbers of a spike without faults are the autoscaler's, not empty fault columns.
    assert "<th>first scale-up<br>" in page and "<th>p95 in spike<br>" in page and "<th>time to recover<br>" not in page
    assert np.isfinite(pd.read_csv(copy / "summary.csv")["first_scale_up_s"]).sum() == 1


def test_a_run_without_an_autoscaler_has_no_autoscaling_chart() -> None:
    other = read_run(FIXTURE.parent / "replicas-pod-delete-20261127T120000Z")
    assert autoscaling_chart(other, analysis.summary_table(other)) is None


def test_the_chart_draws_from_what_a_real_hpas_status_shows(run: RunData) -> None:
    # autoscaler.csv from the kubernetes backend: the status has no recommendation and
    # no count of the pods that counted; the chart still draws all its lines.
    blank = ["recommendation", "ready", "unready", "missing"]
    trials = [dataclasses.replace(trial, autoscaler=trial.autoscaler.assign(**{column: np.nan for column in blank})) for trial in run.trials]
    kube = dataclasses.replace(run, trials=trials)
    fig = autoscaling_chart(kube, analysis.summary_table(kube))
    assert fig is not None
    assert [len(traces(fig, meta)) for meta in ("desired", "utilization", "expected", "users")] == [2, 2, 2, 2]
    # A diamond at every evaluation that had a metric (the current pods stand in for the
    # ones that counted), not only where the CPU was within the tolerance.
    for expected, utilization in zip(traces(fig, "expected"), traces(fig, "utilization")):
        measured = [t for t, v in zip(utilization.x, utilization.y) if v == v]
        drawn = [t for t, v in zip(expected.x, expected.y) if v == v]
        assert measured and drawn == measured
