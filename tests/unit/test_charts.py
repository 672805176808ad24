"""Charts carry what a slide needs: the right traces, titles that name the subject, axis
titles with units, text large enough to read, and one colour per sweep value everywhere."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from chaoslab import analysis, charts, charts_data
from chaoslab.load.integrity import INTEGRITY_COLUMNS
from chaoslab.results import RunData, read_run

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "runs" / "replicas-pod-delete-20261127T120000Z"
LABELS = ["replicas=1", "replicas=3"]
UNIT = re.compile(r"\((s|ms|%|count)[,)]|/s\b")


@pytest.fixture(scope="module")
def run() -> RunData:
    return read_run(FIXTURE)


@pytest.fixture(scope="module")
def tables(run: RunData) -> tuple[pd.DataFrame, pd.DataFrame]:
    summary = analysis.summary_table(run)
    return summary, analysis.comparison_table(summary, run.sweep_paths, np.random.default_rng(0))


@pytest.fixture(scope="module")
def figures(run: RunData, tables: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, go.Figure]:
    summary, comparison = tables
    recovery = charts.recovery_timeline_chart(run, summary)
    assert recovery is not None
    return {
        "availability": charts.availability_chart(run, summary),
        "latency": charts.latency_chart(run, summary),
        "recovery": recovery,
        "sweep": charts.sweep_comparison_chart(summary, comparison, run.experiment),
        "failures": charts.failures_chart(summary, run.experiment),
    }


def traces(fig: go.Figure, meta: str) -> list:
    return [t for t in fig.data if t.meta == meta]


def test_availability_chart(figures: dict[str, go.Figure]) -> None:
    fig = figures["availability"]
    assert fig.layout.title.text == "Deleting 1 pod: availability and throughput with 1, 3 replicas"
    ratio = traces(fig, "success_ratio")
    assert [t.name for t in ratio] == LABELS
    assert all(t.yaxis == "y" for t in ratio)
    # The 1-replica trial had an outage: its success ratio reaches 0 %, the 3-replica one stays high.
    assert np.nanmin(np.asarray(ratio[0].y, dtype=float)) == 0.0
    assert np.nanmedian(np.asarray(ratio[1].y, dtype=float)) == 100.0
    assert [t.yaxis for t in traces(fig, "throughput")] == ["y2", "y2"]
    ready = traces(fig, "ready_endpoints")
    assert [t.yaxis for t in ready] == ["y3", "y3"] and all(t.line.shape == "hv" for t in ready)
    assert max(ready[1].y) == 3 and min(ready[1].y) == 2 and min(ready[0].y) == 0
    assert fig.layout.xaxis2.title.text == "time since measurement start (s)"
    assert fig.layout.yaxis.title.text == "success ratio (%)"
    assert fig.layout.yaxis2.title.text == "successful requests/s"
    assert fig.layout.yaxis3.title.text == "ready endpoints"
    # A dotted fault marker at ~15 s on both panels, labelled with its action; error windows shaded.
    faults = [s for s in fig.layout.shapes if s.type == "line" and s.line.dash == "dot"]
    assert len(faults) == 2 and all(abs(s.x0 - 15.0) < 0.1 for s in faults)
    assert any(a.text == "pod-delete" for a in fig.layout.annotations)
    shaded = [s for s in fig.layout.shapes if s.type == "rect"]
    outage = [s for s in shaded if s.fillcolor == charts.OKABE_ITO[0]]
    assert len(outage) == 1 and 2.0 < outage[0].x1 - outage[0].x0 < 3.5
    assert any(s.type == "line" and s.y0 == pytest.approx(99.0) for s in fig.layout.shapes)
    # The Locust users of each trial on a right axis over the top panel, which keeps its own.
    users = traces(fig, "users")
    assert [t.name for t in users] == [f"{label} users" for label in LABELS]
    axis = users[0].yaxis
    assert {t.yaxis for t in users} == {axis} and axis not in ("y", "y2", "y3")
    assert fig.layout[axis.replace("y", "yaxis")].overlaying == "y"
    assert fig.layout[axis.replace("y", "yaxis")].title.text == "users (count)"
    assert max(users[0].y) == 10  # the fixture's load.users


def test_latency_chart(figures: dict[str, go.Figure]) -> None:
    fig = figures["latency"]
    assert fig.layout.title.text == "Deleting 1 pod: latency of successful requests with 1, 3 replicas"
    for label in LABELS:
        assert {t.meta for t in fig.data if t.name and t.name.startswith(label)} == {"p50", "p95", "p99", "users"}
    assert [t.name for t in traces(fig, "legend_key")] == ["p50", "p95", "p99"]
    assert fig.layout.xaxis2.title.text == "time since measurement start (s)"
    assert fig.layout.yaxis.title.text == fig.layout.yaxis2.title.text == "latency (ms)"
    one_replica_p99 = next(t for t in fig.data if t.name == "replicas=1 p99")
    # Nothing succeeded during the 1-replica outage: a gap, not a zero.
    assert np.isnan(np.asarray(one_replica_p99.y, dtype=float)).sum() >= 20
    assert np.nanmin(np.asarray(one_replica_p99.y, dtype=float)) > 0


def test_recovery_timeline_chart(figures: dict[str, go.Figure]) -> None:
    fig = figures["recovery"]
    assert fig.layout.title.text == "Deleting 1 pod: how the pods recovered with 1, 3 replicas"
    bars = [t for t in fig.data if t.type == "bar"]
    states = [t.name for t in bars]
    assert {"scheduling", "starting", "warming up", "joining Service", "serving"} <= set(states)
    assert all(t.orientation == "h" for t in bars)
    rows = list(fig.layout.yaxis.categoryarray)
    # 1 replica: the deleted pod and its replacement; 3 replicas: those plus one row for
    # the two pods that kept serving throughout.
    assert len(rows) == 5
    assert sum("(deleted)" in r for r in rows) == 2 and sum("(new)" in r for r in rows) == 2
    assert sum("2 other pods, serving throughout" in r for r in rows) == 1
    warming = next(t for t in fig.data if t.name == "warming up")
    assert all(1.0 < width < 3.5 for width in warming.x)
    assert fig.layout.xaxis.title.text == "time since measurement start (s)"
    # The Locust users of each sweep point on a right axis over the pod rows, which keep
    # their own (categorical) axis.
    users = traces(fig, "users")
    assert [t.name for t in users] == [f"{label} users" for label in LABELS]
    assert {t.yaxis for t in users} == {"y2"} and {t.xaxis for t in users} == {"x"}
    assert fig.layout.yaxis2.overlaying == "y" and fig.layout.yaxis2.side == "right"
    assert fig.layout.yaxis2.title.text == "users (count)" and fig.layout.yaxis2.categoryarray is None
    assert max(users[0].y) == 10  # the fixture's load.users
    assert [t.meta for t in fig.data if t.yaxis in (None, "y")] == states


def test_latency_users_axes_stay_linear_when_the_panels_are_logarithmic() -> None:
    # The autoscale-spike run's p99 spans more than 20x, so the latency panels are log.
    spike = read_run(FIXTURE.parent / "autoscale-spike-20261201T215111Z")
    fig = charts.latency_chart(spike, analysis.summary_table(spike))
    assert fig.layout.yaxis.type == fig.layout.yaxis2.type == "log"
    users = traces(fig, "users")
    assert [t.yaxis for t in users] == ["y3", "y4"]
    for name in ("yaxis3", "yaxis4"):
        assert fig.layout[name].type != "log" and fig.layout[name].range[0] == 0
    assert max(users[0].y) == 12 and fig.layout.yaxis3.range[1] > 12


def test_identity_timeline_draws_the_users(run: RunData, tables: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    # The fixture's trials (real load.csv) with an integrity table: db-0 answered the
    # data-integrity users before and after the fault.
    trials = []
    for trial in run.trials:
        start = float(trial.load["ts"].min())
        frame = pd.DataFrame(
            [{"ts": start + t, "op": "read", "key": "k1", "ordinal": 0, "outcome": "found", "pod": "db-0", "node": "node-1", "volume": "v1", "starts": 1} for t in (6.0, 12.0, 30.0)],
            columns=list(INTEGRITY_COLUMNS),
        )
        trials.append(dataclasses.replace(trial, integrity=frame))
    stateful = dataclasses.replace(run, trials=trials)
    fig = charts_data.identity_timeline_chart(stateful, tables[0])
    assert fig is not None
    users = traces(fig, "users")
    assert [t.name for t in users] == [f"{label} users" for label in LABELS]
    assert {t.yaxis for t in users} == {"y2"} and fig.layout.yaxis2.overlaying == "y"
    assert fig.layout.yaxis2.title.text == "users (count)" and max(users[0].y) == 10


def test_sweep_comparison_chart(figures: dict[str, go.Figure], tables: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    fig = figures["sweep"]
    assert fig.layout.title.text == "Deleting 1 pod: time to recover and availability by replicas"
    for metric in ("time_to_recover_s", "availability"):
        per_trial = traces(fig, f"trials:{metric}")
        assert [len(t.y) for t in per_trial] == [2, 2]
        medians = traces(fig, f"median:{metric}")
        assert len(medians) == 2 and all(t.error_y.array is not None for t in medians)
    assert fig.layout.yaxis.title.text == "time to recover (s)"
    assert fig.layout.yaxis2.title.text == "availability (%)"
    assert fig.layout.xaxis.title.text == "replicas (count)"
    assert list(fig.layout.xaxis.ticktext) == ["1", "3"]
    assert any("recovery budget 10s" in (a.text or "") for a in fig.layout.annotations)
    assert not traces(fig, "never_recovered")


def test_sweep_comparison_marks_trials_that_never_recovered(run: RunData, tables: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    summary, _ = tables
    broken = summary.copy()
    broken.loc[broken["trial"] == "p01-t1", "time_to_recover_s"] = math.nan
    comparison = analysis.comparison_table(broken, run.sweep_paths, np.random.default_rng(0))
    fig = charts.sweep_comparison_chart(broken, comparison, run.experiment)
    never = traces(fig, "never_recovered")
    assert len(never) == 1 and len(never[0].y) == 1
    assert any(t.name == "never recovered" for t in fig.data)


def test_failures_chart(figures: dict[str, go.Figure], tables: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    fig = figures["failures"]
    summary, _ = tables
    assert fig.layout.title.text == "Deleting 1 pod: failed requests by error class with 1, 3 replicas"
    assert fig.layout.barmode == "stack"
    refused, reset = traces(fig, "refused"), traces(fig, "reset")
    assert len(refused) == 1 and len(reset) == 1
    per_trial = summary.groupby("trial").first()
    assert list(refused[0].y) == list(per_trial["refused"])
    assert refused[0].marker.pattern.shape == "" and reset[0].marker.pattern.shape == "/"
    assert list(traces(fig, "totals")[0].text) == [str(int(v)) for v in per_trial["failed_requests"]]
    assert fig.layout.yaxis.title.text == "failed requests (count)"


def test_every_chart_is_slide_sized_and_readable(figures: dict[str, go.Figure]) -> None:
    for name, fig in figures.items():
        assert (fig.layout.width, fig.layout.height) == (1600, 900), name
        assert fig.layout.font.size >= 18 and fig.layout.title.font.size >= 18, name
        for key in fig.layout:
            if re.fullmatch(r"[xy]axis\d*", key) and fig.layout[key].tickfont.size is not None:
                assert fig.layout[key].tickfont.size >= 18, (name, key)
        for annotation in fig.layout.annotations:
            assert annotation.font.size is None or annotation.font.size >= 18, (name, annotation.text)
        titled = [fig.layout[k].title.text for k in fig.layout if re.fullmatch(r"[xy]axis\d*", k) and fig.layout[k].title.text]
        assert titled and all(UNIT.search(t) or t == "ready endpoints" or t.startswith("sweep point") for t in titled), (name, titled)


def test_a_sweep_value_has_one_colour_in_every_chart(run: RunData, figures: dict[str, go.Figure]) -> None:
    expected = charts.sweep_colors(charts.run_labels(run))
    assert list(expected) == LABELS and len(set(expected.values())) == 2
    for label, color in expected.items():
        assert next(t for t in traces(figures["availability"], "success_ratio") if t.name == label).line.color == color
        assert next(t for t in figures["latency"].data if t.name == f"{label} p99").line.color == color
        assert next(t for t in traces(figures["sweep"], "trials:availability") if t.name == label).marker.color == color
        rows = [r for r in figures["recovery"].layout.yaxis.categoryarray if f">{label}<" in r]
        assert rows and all(f"color:{color}" in r for r in rows)
    bars = traces(figures["failures"], "refused")[0]
    groups = list(bars.x[0])
    assert list(bars.marker.color) == [expected[group] for group in groups]


def test_sweep_colors_follow_plan_order_not_the_subset_shown() -> None:
    full = charts.sweep_colors(["replicas=1", "replicas=2", "replicas=3"])
    assert full["replicas=3"] == charts.OKABE_ITO[2]
    assert charts.sweep_colors(["a", "b", "a"]) == {"a": charts.OKABE_ITO[0], "b": charts.OKABE_ITO[1]}
    many = charts.sweep_colors([f"v{i}" for i in range(10)])
    assert many["v8"] == many["v0"]  # the palette cycles after eight values


def test_titles_name_the_fault_and_the_sweep(run: RunData) -> None:
    experiment = run.experiment
    assert charts.fault_subject(experiment) == "Deleting 1 pod"
    assert charts.sweep_phrase(experiment) == "with 1, 3 replicas"
    node = experiment.model_copy(update={"faults": [], "sweep": {"workload.tolerationSeconds": [10, 300]}})
    assert charts.fault_subject(node) == "No fault (baseline)"
    assert charts.sweep_phrase(node) == "by tolerationSeconds (10, 300)"
    assert charts.sweep_axis_title(node) == "tolerationSeconds (s)"
