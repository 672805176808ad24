"""Charts of load that changes and of the autoscaler's answer; users on every time chart.

A sibling of charts.py (which is already long): the autoscaling chart (replicas desired
and ready with the users, CPU utilisation against its target, latency and throughput
with the scaling events marked, and what the algorithm asks for from the measured CPU
beside what the HPA did), and `add_users`, which puts the Locust users of a time chart's
trials on a right-hand axis overlaying one of its panels. Built from results only.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from chaoslab import analysis
from chaoslab.analysis_autoscale import autoscaler_over_time, expected_replicas, scale_events, users_over_time
from chaoslab.charts import (
    NEUTRAL,
    SECONDS_AXIS,
    TICK_FONT_SIZE,
    SeriesSource,
    _extend_layout,
    _measure_duration,
    _ready_steps,
    _style,
    _title,
    fault_subject,
    run_labels,
    series_sources,
    sweep_colors,
    sweep_phrase,
)
from chaoslab.results import RunData
from chaoslab.spec import AutoscalingSpec

USERS_COLOR = "#9a9a9a"


def add_users(fig: go.Figure, sources: Sequence[SeriesSource], x_ref: str, y_ref: str) -> bool:
    """The users of each source as a thin grey step line on a right axis over panel (x_ref, y_ref).

    A new y axis overlays the panel, so the panel's own axes keep their names; a caller
    that styles y axes afterwards should select the panel's (row=, col=), or it restyles
    this one too. Returns whether anything was drawn: nothing is added when no source has
    a user count (the caller may then spare the right margin).
    """
    frames = [(source, users_over_time(source.trial.load, source.measure_start, source.measure_end)) for source in sources]
    frames = [(source, frame) for source, frame in frames if len(frame)]
    if not frames:
        return False
    used = [int(name.replace("yaxis", "") or 1) for name in fig.layout.to_plotly_json() if name.startswith("yaxis")]
    number = max(used, default=1) + 1
    axis = f"y{number}"
    for source, frame in frames:
        fig.add_trace(
            go.Scatter(
                x=frame["t_s"],
                y=frame["users"],
                name=f"{source.label} users",
                mode="lines",
                line={"color": USERS_COLOR, "width": 2, "shape": "hv", "dash": "dot"},
                showlegend=False,
                hovertemplate="%{x:.1f}s: %{y} users<extra>" + html.escape(source.label) + "</extra>",
                meta="users",
                xaxis=x_ref,
                yaxis=axis,
                legendgroup=source.label,
            )
        )
    peak = max(float(frame["users"].max()) for _, frame in frames)
    fig.layout[f"yaxis{number}"] = {
        "overlaying": y_ref,
        "anchor": x_ref,
        "side": "right",
        "showgrid": False,
        "rangemode": "tozero",
        "range": [0, peak * 1.15 + 1],
        "tickmode": "auto",
        "nticks": 5,
        "title": {"text": "users (count)", "font": {"color": USERS_COLOR}},
        "tickfont": {"color": USERS_COLOR, "size": TICK_FONT_SIZE},
    }
    return True


def _point_autoscaling(run: RunData, source: SeriesSource) -> AutoscalingSpec | None:
    """The autoscaling spec the source's trial ran with (its sweep point applied)."""
    params = {path: value for path, value in source.trial.params.items() if path in run.experiment.sweep}
    try:
        return run.experiment.with_overrides({**params, "sweep": {}}).workload.autoscaling
    except ValueError:
        return run.experiment.workload.autoscaling


def _hpa_sources(run: RunData, summary: pd.DataFrame, colors: Mapping[str, str]) -> list[SeriesSource]:
    return [s for s in series_sources(run, summary, colors) if len(s.trial.autoscaler)]


def autoscaling_chart(run: RunData, summary: pd.DataFrame, *, colors: Mapping[str, str] | None = None) -> go.Figure | None:
    """(6) How the HorizontalPodAutoscaler answered the load, per sweep point (representative trial).

    Top: desired replicas (solid steps, from autoscaler.csv), ready endpoints (dashed) and,
    as diamonds, what the algorithm asks for from each measured utilisation
    (`expected_replicas`: the documented formula before stabilization and policies), with
    the users on the right axis. Middle: measured CPU utilisation at each evaluation and
    the target (dashed). Bottom: p95 latency and successful requests/s (right axis); every
    scale-up and scale-down is a vertical line. None when no trial had an autoscaler.
    """
    colors = dict(colors or sweep_colors(run_labels(run)))
    sources = _hpa_sources(run, summary, colors)
    if not sources:
        return None
    experiment = run.experiment
    tolerance = experiment.cluster.sim.timings.hpa_tolerance
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.07,
        row_heights=[0.4, 0.27, 0.33],
        specs=[[{}], [{}], [{"secondary_y": True}]],
    )
    marks: list[dict[str, object]] = []
    target_drawn = False
    peak = 1.0
    for source in sources:
        group = {"legendgroup": source.label}
        hpa = autoscaler_over_time(source.trial.autoscaler, source.measure_start)
        duration = source.measure_end - source.measure_start
        inside = hpa[(hpa["t_s"] >= -1e-9) & (hpa["t_s"] <= duration)]
        before = hpa[hpa["t_s"] < 0]
        start_desired = float(before["desired"].iloc[-1]) if len(before) else float(source.trial.info.desired_replicas or 0)
        xs = [0.0, *inside["t_s"].tolist(), duration]
        ys = [start_desired, *inside["desired"].tolist(), float(inside["desired"].iloc[-1]) if len(inside) else start_desired]
        peak = max(peak, *ys)
        fig.add_trace(
            go.Scatter(x=xs, y=ys, name=source.label, mode="lines", line={"color": source.color, "width": 3, "shape": "hv"},
                       hovertemplate="%{x:.1f}s: %{y} desired<extra>" + html.escape(source.label) + "</extra>", meta="desired", **group),
            row=1, col=1,
        )
        steps = _ready_steps(source)
        if steps is not None:
            peak = max(peak, float(steps["ready"].max()))
            fig.add_trace(
                go.Scatter(x=steps["t_s"], y=steps["ready"], name=f"{source.label} ready", mode="lines", showlegend=False,
                           line={"color": source.color, "width": 2.5, "dash": "dash", "shape": "hv"},
                           hovertemplate="%{x:.1f}s: %{y} ready endpoints<extra>" + html.escape(source.label) + "</extra>", meta="ready", **group),
                row=1, col=1,
            )
        scaling = _point_autoscaling(run, source)
        if scaling is not None:
            # Not bounded by maxReplicas: a capped HPA's diamonds show what it wanted.
            expected = expected_replicas(source.trial.autoscaler, tolerance, scaling.min_replicas, None)
            expected["t_s"] = expected["ts"] - source.measure_start
            shown = expected[(expected["t_s"] >= 0) & (expected["t_s"] <= duration)]
            fig.add_trace(
                go.Scatter(x=shown["t_s"], y=shown["expected"], name=f"{source.label} expected", mode="markers", showlegend=False,
                           marker={"symbol": "diamond-open", "size": 12, "color": source.color, "line": {"width": 2}},
                           hovertemplate="%{x:.1f}s: the formula asks for %{y}<extra>" + html.escape(source.label) + "</extra>", meta="expected", **group),
                row=1, col=1,
            )
        fig.add_trace(
            go.Scatter(x=inside["t_s"], y=inside["utilization"], name=f"{source.label} CPU", mode="lines+markers", showlegend=False,
                       line={"color": source.color, "width": 2.5}, marker={"size": 8},
                       hovertemplate="%{x:.1f}s: %{y}% of the CPU request<extra>" + html.escape(source.label) + "</extra>", meta="utilization", **group),
            row=2, col=1,
        )
        if not target_drawn and len(inside):
            target = float(inside["target"].iloc[0])
            fig.add_hline(y=target, line={"color": NEUTRAL, "width": 2, "dash": "dash"}, row=2, col=1)
            fig.add_annotation(x=1.0, xref="x2 domain", y=target, yref="y2", text=f"target {target:g}%", showarrow=False,
                               xanchor="right", yanchor="bottom", font={"size": TICK_FONT_SIZE, "color": NEUTRAL})
            target_drawn = True
        series = analysis.time_series(source.trial.load, measure_start=source.measure_start, measure_end=source.measure_end, bucket=source.bucket)
        fig.add_trace(
            go.Scatter(x=series["t_s"], y=series["p95_ms"], name=f"{source.label} p95", mode="lines", showlegend=False,
                       line={"color": source.color, "width": 2.5},
                       hovertemplate="%{x:.1f}s: p95 %{y:.0f} ms<extra>" + html.escape(source.label) + "</extra>", meta="p95", **group),
            row=3, col=1, secondary_y=False,
        )
        fig.add_trace(
            go.Scatter(x=series["t_s"], y=series["throughput_smooth_rps"], name=f"{source.label} throughput", mode="lines", showlegend=False,
                       line={"color": source.color, "width": 2, "dash": "dot"},
                       hovertemplate="%{x:.1f}s: %{y:.0f} successful requests/s<extra>" + html.escape(source.label) + "</extra>", meta="throughput", **group),
            row=3, col=1, secondary_y=True,
        )
        for event in scale_events(source.trial.events).itertuples(index=False):
            t = float(event.ts) - source.measure_start
            if 0 <= t <= duration:
                marks.append({"type": "line", "xref": "x3", "yref": "y3 domain", "x0": t, "x1": t, "y0": 0, "y1": 1,
                              "line": {"color": source.color, "width": 1.5, "dash": "dashdot"}, "layer": "below"})
                marks.append({"type": "line", "xref": "x", "yref": "y domain", "x0": t, "x1": t, "y0": 0, "y1": 1,
                              "line": {"color": source.color, "width": 1.5, "dash": "dashdot"}, "layer": "below"})
    _extend_layout(fig, marks)
    for name, style in (("ready endpoints (dashed)", {"dash": "dash"}), ("throughput (dotted, right axis)", {"dash": "dot"}), ("HPA scaled (dash-dot line)", {"dash": "dashdot"})):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=name, line={"color": NEUTRAL, "width": 2.5, **style}, meta="legend_key"), row=1, col=1)
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="algorithm on measured CPU", marker={"symbol": "diamond-open", "size": 12, "color": NEUTRAL}, meta="legend_key"), row=1, col=1)
    add_users(fig, sources, "x", "y")
    title = _title(fault_subject(experiment), "how the autoscaler answered the load", sweep_phrase(experiment))
    _style(fig, title)
    duration = _measure_duration(sources)
    fig.update_xaxes(range=[0, duration] if duration else None)
    fig.update_xaxes(title_text=SECONDS_AXIS, row=3, col=1)
    fig.update_yaxes(title_text="replicas (count)", range=[0, peak + 0.6], dtick=1, row=1, col=1)
    fig.update_yaxes(title_text="CPU of the request (%)", rangemode="tozero", row=2, col=1)
    fig.update_yaxes(title_text="p95 (ms)", rangemode="tozero", row=3, col=1, secondary_y=False)
    fig.update_yaxes(title_text="successful req/s", rangemode="tozero", showgrid=False, row=3, col=1, secondary_y=True)
    fig.update_layout(legend={"orientation": "h", "x": 0.0, "y": 1.04, "yanchor": "bottom"}, margin={"t": 170, "r": 120})
    return fig
