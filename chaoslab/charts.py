"""The charts of a report, as plotly figures ready for a slide.

Why a module of its own: every chart is drawn from the results folder's frames and the
analysis tables alone (never the cluster, never the disk), so `chaoslab report` redraws
them from a folder at any time, and the report decides where they go (HTML, PNG, SVG).

Slide rules every figure follows: 1600x900 by default, text at 18 px or more, a title that
names the finding's subject ("Deleting 1 pod: availability and throughput with 1, 3
replicas"), axis titles with units, and the Okabe-Ito palette (safe for the common forms of
colour blindness). A sweep value keeps its colour in every chart of a report: colours come
from `sweep_colors` over the run's sweep points in plan order. Categories that are not
sweep values (pod phases, error classes) never use those colours: pod phases use a
sequential viridis scale and error classes use fill patterns, so a colour always means
one sweep point.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from chaoslab import analysis
from chaoslab.results import FAILURE_CLASSES, RunData, TrialData
from chaoslab.spec import Experiment

# 16:9 at a size that stays sharp on a 1080p projector and crisp when scaled up as SVG.
SLIDE_WIDTH = 1600
SLIDE_HEIGHT = 900
# The fonts `make system-deps` installs (fonts-dejavu-core, fonts-liberation), then fallbacks.
FONT_FAMILY = "DejaVu Sans, Liberation Sans, Arial, sans-serif"
# Text sizes in px at slide size: nothing under 18 px, which stays legible from the back of a room.
FONT_SIZE = 20
TICK_FONT_SIZE = 18
TITLE_FONT_SIZE = 30
TEXT_COLOR = "#222222"
GRID_COLOR = "#e3e3e3"
# Okabe & Ito (2008), "Color Universal Design": distinguishable with protanopia,
# deuteranopia and tritanopia. Ordered for lines on white: yellow last (weak contrast).
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
NEUTRAL = "#6e6e6e"
# Pod states on the recovery timeline: viridis steps for the way back (ordered, dark to
# light), greys for the states that are not part of it. Never a sweep colour.
STATE_COLORS = {
    "scheduling": "#440154",
    "starting": "#3b528b",
    "warming up": "#21918c",
    "joining Service": "#5ec962",
    "serving": "#c8c8c8",
    "not ready": "#fde725",
    "restarting": "#111111",
    "terminating": "#8a8a8a",
}
# Error classes are told apart by fill pattern, drawn over the sweep point's colour.
CLASS_PATTERNS = {"refused": "", "reset": "/", "timeout": "x", "http_5xx": ".", "other": "-"}
CLASS_NAMES = {
    "refused": "connection refused",
    "reset": "connection reset",
    "timeout": "timeout",
    "http_5xx": "HTTP 5xx",
    "other": "other",
}
SECONDS_AXIS = "time since measurement start (s)"


# --- colours, labels, titles -----------------------------------------------------------


def sweep_colors(labels: Iterable[str]) -> dict[str, str]:
    """Colour of each sweep point label, by order of first appearance (Okabe-Ito, cycling after 8).

    Call it with every point of a run in plan order (`run_labels`) so that a value keeps its
    colour in every chart, whether or not a chart shows all points.
    """
    colors: dict[str, str] = {}
    for label in labels:
        if label not in colors:
            colors[label] = OKABE_ITO[len(colors) % len(OKABE_ITO)]
    return colors


def run_labels(run: RunData) -> list[str]:
    """The run's sweep point labels in plan order (the journal's plan, else the trials found)."""
    plan = run.journal.get("plan") or []
    points: dict[int, Mapping[str, Any]] = {}
    for entry in plan:
        if isinstance(entry, Mapping) and "point" in entry:
            points.setdefault(int(entry["point"]), entry.get("params", {}))
    for trial in run.trials:
        points.setdefault(trial.point, trial.params)
    return list(dict.fromkeys(analysis.point_label(points[p], run.sweep_paths) for p in sorted(points)))


def fault_subject(experiment: Experiment) -> str:
    """What the experiment does, as the start of a title: "Deleting 1 pod", "Crashing 1 node"."""
    if not experiment.faults:
        stages = experiment.load.stages
        if stages:
            peak = max(stage.users for stage in stages)
            return f"Load from {experiment.load.users} to {peak} users" if peak != experiment.load.users else "No fault (baseline)"
        return "No fault (baseline)"
    phrases = [_fault_phrase(fault) for fault in experiment.faults[:2]]
    if len(experiment.faults) > 2:
        phrases.append(f"{len(experiment.faults) - 2} more faults")
    subject = " + ".join(phrases)
    return subject[0].upper() + subject[1:]


_VERBS = {
    "pod-delete": ("deleting", "pod"),
    "container-kill": ("killing", "container"),
    "node-crash": ("crashing", "node"),
    "node-hang": ("hanging", "node"),
    "node-drain": ("draining", "node"),
    "node-restore": ("restoring", "node"),
}


def _fault_phrase(fault: Any) -> str:
    if fault.action == "scale":
        phrase = f"scaling to {fault.replicas} replicas"
    else:
        verb, noun = _VERBS[fault.action]
        target = fault.target
        if target.count is not None:
            phrase = f"{verb} {target.count} {noun}{'s' if target.count != 1 else ''}"
        elif target.percent is not None:
            phrase = f"{verb} {target.percent * 100:g}% of {noun}s"
        else:
            phrase = f"{verb} {noun} {target.name}"
    if fault.every is not None:
        phrase += f" every {fault.every:g}s"
    return phrase


def sweep_phrase(experiment: Experiment) -> str:
    """How the sweep reads in a title: "with 1, 2, 3 replicas", "by periodSeconds (1, 5, 10)", or ""."""
    sweep = experiment.sweep
    if not sweep:
        return ""
    if len(sweep) == 1:
        path, values = next(iter(sweep.items()))
        shown = ", ".join(_value_text(v) for v in values)
        if path == "workload.replicas":
            return f"with {shown} replicas"
        return f"by {path.rsplit('.', 1)[-1]} ({shown})"
    return "by " + " × ".join(path.rsplit(".", 1)[-1] for path in sweep)


def _value_text(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def sweep_axis_title(experiment: Experiment) -> str:
    """The x-axis title of a sweep comparison: the swept field, with its unit when known."""
    if len(experiment.sweep) != 1:
        return "sweep point"
    path = next(iter(experiment.sweep))
    leaf = path.rsplit(".", 1)[-1]
    if path == "workload.replicas":
        return "replicas (count)"
    if leaf.lower().endswith("seconds"):
        return f"{leaf} (s)"
    if leaf.lower().endswith("ms"):
        return f"{leaf} (ms)"
    return leaf


def _title(subject: str, what: str, phrase: str = "") -> str:
    return f"{subject}: {what}" + (f" {phrase}" if phrase else "")


def _colored(label: str, color: str) -> str:
    return f"<span style='color:{color}'><b>{html.escape(label)}</b></span>"


def _style(fig: go.Figure, title: str) -> go.Figure:
    """The slide look shared by every chart."""
    fig.update_layout(
        template="plotly_white",
        width=SLIDE_WIDTH,
        height=SLIDE_HEIGHT,
        font={"family": FONT_FAMILY, "size": FONT_SIZE, "color": TEXT_COLOR},
        title={"text": title, "font": {"size": TITLE_FONT_SIZE}, "x": 0.02, "xanchor": "left", "y": 0.97, "yanchor": "top"},
        legend={"font": {"size": TICK_FONT_SIZE}, "bgcolor": "rgba(255,255,255,0.85)"},
        margin={"l": 110, "r": 40, "t": 120, "b": 100},
        hoverlabel={"font": {"size": TICK_FONT_SIZE}},
    )
    fig.update_xaxes(tickfont={"size": TICK_FONT_SIZE}, title_font={"size": FONT_SIZE}, gridcolor=GRID_COLOR, showline=True, linecolor="#555", zeroline=False)
    fig.update_yaxes(tickfont={"size": TICK_FONT_SIZE}, title_font={"size": FONT_SIZE}, gridcolor=GRID_COLOR, showline=True, linecolor="#555", zeroline=False)
    fig.update_annotations(font_size=max(TICK_FONT_SIZE, FONT_SIZE - 2))
    return fig


def _translucent(color: str, alpha: float) -> str:
    """`#rrggbb` as an rgba() string with the given opacity."""
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _note(fig: go.Figure, text: str) -> None:
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False, font={"size": 24, "color": NEUTRAL})


# --- what a time-series chart draws per sweep point ---------------------------------------


@dataclass(frozen=True)
class SeriesSource:
    """One line group of a time-series chart: a representative trial and how to show it."""

    label: str
    color: str
    trial: TrialData
    faults: pd.DataFrame  # its summary rows
    measure_start: float
    measure_end: float
    bucket: float


@dataclass(frozen=True)
class LabelledRun:
    """A run in a comparison across runs: its label prefix, data and summary table."""

    label: str
    run: RunData
    summary: pd.DataFrame


def series_sources(run: RunData, summary: pd.DataFrame, colors: Mapping[str, str], prefix: str = "") -> list[SeriesSource]:
    """The representative trial of each sweep point (`analysis.representative_trials`), in plan order."""
    chosen = analysis.representative_trials(summary)
    trials = {trial.id: trial for trial in run.trials}
    bucket = run.experiment.measure.bucket
    sources = []
    for label in run_labels(run):
        trial_id = chosen.get(label)
        if trial_id is None or trial_id not in trials:
            continue
        trial = trials[trial_id]
        window = analysis.measurement_window(trial, run.experiment.timeline.duration, bucket)
        if window is None:
            continue
        shown = (f"{prefix} · {label}" if run.sweep_paths else prefix) if prefix else label
        sources.append(
            SeriesSource(
                label=shown,
                color=colors.get(shown, NEUTRAL),
                trial=trial,
                faults=summary[(summary["trial"] == trial_id) & summary["fault_id"].notna()],
                measure_start=window[0],
                measure_end=window[1],
                bucket=bucket,
            )
        )
    return sources


def _fault_marks(sources: Sequence[SeriesSource]) -> pd.DataFrame:
    """One row per fault id: its action and its median time (s) over the shown trials."""
    frames = [s.faults[["fault_id", "action", "fault_s"]] for s in sources if len(s.faults)]
    if not frames:
        return pd.DataFrame(columns=["action", "fault_s"])
    return pd.concat(frames, ignore_index=True).groupby("fault_id", sort=False).agg(action=("action", "first"), fault_s=("fault_s", "median"))


def _fault_markers(fig: go.Figure, sources: Sequence[SeriesSource], axes: Sequence[tuple[str, str]], label_axes: tuple[str, str]) -> None:
    """A dotted vertical line per fault on each (x, y) axis pair, labelled with its action once.

    With more than six faults only the first is labelled ("container-kill ×12"). Shapes are
    added in one layout update: plotly's add_vline copies every shape, which is quadratic.
    """
    marks = _fault_marks(sources)
    many = len(marks) > 6
    line = {"color": "#999999", "width": 1, "dash": "dot"} if many else {"color": "#333", "width": 2, "dash": "dot"}
    shapes, annotations = [], []
    for position, mark in enumerate(marks.itertuples(index=False)):
        for xref, yref in axes:
            shapes.append({"type": "line", "xref": xref, "yref": f"{yref} domain", "x0": float(mark.fault_s), "x1": float(mark.fault_s), "y0": 0, "y1": 1, "line": line, "layer": "below"})
        if many and position > 0:
            continue
        annotations.append(
            {
                "x": float(mark.fault_s),
                "y": 1.0,
                "xref": label_axes[0],
                "yref": f"{label_axes[1]} domain",
                "text": f"{mark.action} ×{len(marks)}" if many else str(mark.action),
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "bottom",
                "font": {"size": TICK_FONT_SIZE, "color": "#333"},
            }
        )
    _extend_layout(fig, shapes, annotations)


def _extend_layout(fig: go.Figure, shapes: Sequence[Mapping[str, Any]] = (), annotations: Sequence[Mapping[str, Any]] = ()) -> None:
    if shapes:
        fig.layout.shapes = (*fig.layout.shapes, *shapes)
    if annotations:
        fig.layout.annotations = (*fig.layout.annotations, *annotations)


def _row_axes(fig: go.Figure, rows: Iterable[int]) -> list[tuple[str, str]]:
    return [(_axis_ref(fig, row, "x"), _axis_ref(fig, row, "y")) for row in rows]


def _axis_ref(fig: go.Figure, row: int, axis: str, col: int = 1) -> str:
    """`x`, `y2`, ... : how shapes and annotations refer to a subplot's axis."""
    subplot = fig.get_subplot(row, col)
    name = subplot.xaxis.plotly_name if axis == "x" else subplot.yaxis.plotly_name
    return name.replace("axis", "")


def _measure_duration(sources: Sequence[SeriesSource]) -> float:
    return max((s.measure_end - s.measure_start for s in sources), default=0.0)


# --- (1) availability and throughput ---------------------------------------------------


def availability_chart(run: RunData, summary: pd.DataFrame, *, colors: Mapping[str, str] | None = None) -> go.Figure:
    """(1) Success ratio and throughput over the measurement window, one line per sweep point.

    Each sweep point is drawn from its representative trial (median availability), not
    from all its trials: on a slide, one line per setting reads at a glance, where 3 trials
    x 4 points would be 12 tangled lines, and an average of trials would smear the outage
    (trials fail at slightly different moments) into a shallower, longer dip that no trial
    ever had. The sweep comparison chart shows every trial.

    Top: success ratio (%) per bucket, the SLO as a dashed line, each error window (first
    to last failing bucket) shaded in its sweep colour. A long trial is drawn in merged bins
    (at most 600 points); the band under the line then reaches down to the worst single
    bucket in each bin, so a 1-second dip in a 1-hour trial stays visible. Bottom: successful requests/s
    (1 s rolling mean) and, on the right axis, ready endpoints as a dashed step line.
    Faults are dotted vertical lines labelled with their action.
    """
    colors = dict(colors or sweep_colors(run_labels(run)))
    experiment = run.experiment
    title = _title(fault_subject(experiment), "availability and throughput", sweep_phrase(experiment))
    return _availability_figure(series_sources(run, summary, colors), title, experiment.measure.slo.availability)


def compare_availability_chart(runs: Sequence[LabelledRun], *, colors: Mapping[str, str]) -> go.Figure:
    """(1) for several runs on one time axis: each run's representative trial per sweep point."""
    sources = [s for item in runs for s in series_sources(item.run, item.summary, colors, prefix=item.label)]
    subject = fault_subject(runs[0].run.experiment) if runs else "Runs"
    slo = runs[0].run.experiment.measure.slo.availability if runs else 0.99
    return _availability_figure(sources, _title(subject, "availability and throughput across runs"), slo)


def _availability_figure(sources: Sequence[SeriesSource], title: str, slo: float) -> go.Figure:
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        row_heights=[0.56, 0.44],
        specs=[[{}], [{"secondary_y": True}]],
    )
    max_ready = 0.0
    error_windows: list[dict[str, Any]] = []
    for source in sources:
        series = analysis.time_series(
            source.trial.load, measure_start=source.measure_start, measure_end=source.measure_end, bucket=source.bucket
        )
        group = {"legendgroup": source.label}
        merged = len(series) > 1 and series["t_s"].iloc[1] - series["t_s"].iloc[0] > source.bucket * 1.5
        # plotly's `tonexty` fill draws stray polygons across gaps (bins where no request
        # completed), so the worst-bucket shading is only drawn for a gap-free series.
        shade = merged and not (series["success_ratio"].isna().any() or series["success_ratio_min"].isna().any())
        if shade:
            # Each point covers several buckets: shade down to the worst bucket so short dips show.
            fig.add_trace(
                go.Scatter(
                    x=series["t_s"], y=series["success_ratio_min"] * 100.0, mode="lines", line={"width": 0, "shape": "hv"},
                    showlegend=False, hoverinfo="skip", meta="success_ratio_worst_bucket", **group,
                ),
                row=1,
                col=1,
            )
        fig.add_trace(
            go.Scatter(
                x=series["t_s"],
                y=series["success_ratio"] * 100.0,
                name=source.label,
                mode="lines",
                fill="tonexty" if shade else None,
                fillcolor=_translucent(source.color, 0.25) if shade else None,
                line={"color": source.color, "width": 3, "shape": "hv"},
                hovertemplate="%{x:.1f}s: %{y:.1f}% successful<extra>" + html.escape(source.label) + "</extra>",
                meta="success_ratio",
                **group,
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=series["t_s"],
                y=series["throughput_smooth_rps"],
                name=f"{source.label} throughput",
                mode="lines",
                line={"color": source.color, "width": 3},
                showlegend=False,
                hovertemplate="%{x:.1f}s: %{y:.0f} successful requests/s<extra>" + html.escape(source.label) + "</extra>",
                meta="throughput",
                **group,
            ),
            row=2,
            col=1,
            secondary_y=False,
        )
        steps = _ready_steps(source)
        if steps is not None:
            max_ready = max(max_ready, float(np.nanmax(steps["ready"])))
            fig.add_trace(
                go.Scatter(
                    x=steps["t_s"],
                    y=steps["ready"],
                    name=f"{source.label} ready endpoints",
                    mode="lines",
                    line={"color": source.color, "width": 2.5, "dash": "dash", "shape": "hv"},
                    showlegend=False,
                    hovertemplate="%{x:.2f}s: %{y} ready endpoints<extra>" + html.escape(source.label) + "</extra>",
                    meta="ready_endpoints",
                    **group,
                ),
                row=2,
                col=1,
                secondary_y=True,
            )
        for fault in source.faults.itertuples(index=False):
            first, span = fault.time_to_first_error_s, fault.error_window_s
            if not (math.isnan(first) or math.isnan(span)) and span > 0:
                start = fault.fault_s + first
                error_windows.append(
                    {"type": "rect", "xref": "x", "yref": "y domain", "x0": start, "x1": start + span, "y0": 0, "y1": 1, "fillcolor": source.color, "opacity": 0.16, "line": {"width": 0}, "layer": "below"}
                )
    _extend_layout(fig, error_windows)
    if max_ready:
        fig.add_trace(
            go.Scatter(x=[None], y=[None], mode="lines", name="ready endpoints (dashed, right axis)", line={"color": NEUTRAL, "width": 2.5, "dash": "dash"}, meta="legend_key"),
            row=2,
            col=1,
            secondary_y=True,
        )
    fig.add_hline(y=slo * 100.0, line={"color": NEUTRAL, "width": 2, "dash": "dash"}, row=1, col=1)
    fig.add_annotation(
        x=1.0, xref="x domain", y=slo * 100.0, yref="y", text=f"SLO {slo * 100:g}%", showarrow=False, xanchor="right", yanchor="top", font={"size": TICK_FONT_SIZE, "color": NEUTRAL}
    )
    _fault_markers(fig, sources, _row_axes(fig, (1, 2)), _row_axes(fig, (1,))[0])
    from chaoslab.charts_autoscale import add_users  # sibling module that imports this one

    add_users(fig, sources, "x", "y")
    duration = _measure_duration(sources)
    _style(fig, title)
    fig.update_xaxes(range=[0, duration] if duration else None)
    fig.update_xaxes(title_text=SECONDS_AXIS, row=2, col=1)
    fig.update_yaxes(title_text="success ratio (%)", range=[-2, 102], row=1, col=1)
    fig.update_yaxes(title_text="successful requests/s", rangemode="tozero", row=2, col=1, secondary_y=False)
    fig.update_yaxes(title_text="ready endpoints", range=[0, max_ready + 0.5], dtick=1, showgrid=False, row=2, col=1, secondary_y=True)
    names = sum(len(s.label) + 6 for s in sources) + 40
    if names <= 110:
        # Few, short names: one line between the title and the plot.
        legend = {"title": {"text": "median trial of"}, "orientation": "h", "x": 0.0, "xanchor": "left", "y": 1.045, "yanchor": "bottom"}
        fig.update_layout(legend=legend, margin={"t": 150, "r": 110})
    else:
        # Many or long names would wrap into the title: a column right of the right axis.
        legend = {"title": {"text": "median trial of"}, "orientation": "v", "x": 1.08, "xanchor": "left", "y": 1.0, "yanchor": "top"}
        fig.update_layout(legend=legend, margin={"r": 40})
    if not sources:
        _note(fig, "no trial reached the measurement phase")
    return fig


def _ready_steps(source: SeriesSource) -> pd.DataFrame | None:
    endpoints = analysis.ready_endpoints(
        source.trial.events,
        measure_start=source.measure_start,
        desired_replicas=source.trial.info.desired_replicas,
        faults=source.trial.faults,
    )
    if not len(endpoints):
        return None
    t = endpoints["ts"].to_numpy(dtype=float) - source.measure_start
    ready = endpoints["ready"].to_numpy(dtype=float)
    duration = source.measure_end - source.measure_start
    inside = (t >= 0) & (t <= duration)
    at_start = ready[t <= 0][-1] if (t <= 0).any() else ready[0]
    xs = np.concatenate(([0.0], t[inside], [duration]))
    ys = np.concatenate(([at_start], ready[inside], [ready[t <= duration][-1] if (t <= duration).any() else at_start]))
    return pd.DataFrame({"t_s": xs, "ready": ys})


# --- (2) latency -----------------------------------------------------------------------

_PERCENTILE_STYLE = {"p50_ms": ("p50", "dot", 2.5), "p95_ms": ("p95", "dash", 2.5), "p99_ms": ("p99", "solid", 3.5)}


def latency_chart(run: RunData, summary: pd.DataFrame, *, colors: Mapping[str, str] | None = None) -> go.Figure:
    """(2) Latency of successful requests, p50/p95/p99 over time, one panel per sweep point.

    Panels (one per sweep point, representative trial, shared time axis) rather than one
    overlay: three percentiles x several points on one axis is unreadable. Line style tells
    the percentile (p50 dotted, p95 dashed, p99 solid), colour the sweep point. The y axis
    is logarithmic when latencies span more than 20x (a 2 s timeout next to 5 ms answers).
    Buckets with no successful request are gaps, not zeros.
    """
    colors = dict(colors or sweep_colors(run_labels(run)))
    experiment = run.experiment
    sources = series_sources(run, summary, colors)
    title = _title(fault_subject(experiment), "latency of successful requests", sweep_phrase(experiment))
    rows = max(1, len(sources))
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06 if rows > 1 else 0.0,
        subplot_titles=[_colored(s.label, s.color) for s in sources] or None,
    )
    # Panel titles sit at the left so the fault labels above each panel stay free.
    for annotation, source in zip(fig.layout.annotations, sources):
        annotation.update(x=0.0, xanchor="left", xref="paper")
    low, high = math.inf, 0.0
    for row, source in enumerate(sources, start=1):
        series = analysis.time_series(source.trial.load, measure_start=source.measure_start, measure_end=source.measure_end, bucket=source.bucket)
        for column, (name, dash, width) in _PERCENTILE_STYLE.items():
            values = series[column]
            if values.notna().any():
                low, high = min(low, float(values.min())), max(high, float(values.max()))
            fig.add_trace(
                go.Scatter(
                    x=series["t_s"],
                    y=values,
                    name=f"{source.label} {name}",
                    mode="lines",
                    line={"color": source.color, "dash": dash, "width": width},
                    showlegend=False,
                    legendgroup=name,
                    hovertemplate="%{x:.1f}s: %{y:.1f} ms<extra>" + html.escape(f"{source.label} {name}") + "</extra>",
                    meta=name,
                ),
                row=row,
                col=1,
            )
        fig.update_yaxes(title_text="latency (ms)", row=row, col=1)
    for column, (name, dash, width) in _PERCENTILE_STYLE.items():
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=name, line={"color": NEUTRAL, "dash": dash, "width": width}, legendgroup=name, meta="legend_key"), row=1, col=1)
    _fault_markers(fig, sources, _row_axes(fig, range(1, rows + 1)), _row_axes(fig, (1,))[0])
    from chaoslab.charts_autoscale import add_users  # sibling module that imports this one

    users = [add_users(fig, [source], _axis_ref(fig, row, "x"), _axis_ref(fig, row, "y")) for row, source in enumerate(sources, start=1)]
    _style(fig, title)
    duration = _measure_duration(sources)
    fig.update_xaxes(range=[0, duration] if duration else None)
    fig.update_xaxes(title_text=SECONDS_AXIS, row=rows, col=1)
    # Per panel (row=): the users axes overlaying the panels keep their linear scale.
    for row in range(1, rows + 1):
        if high > 0 and low > 0 and high / low > 20:
            fig.update_yaxes(type="log", row=row, col=1)
        else:
            fig.update_yaxes(rangemode="tozero", row=row, col=1)
    # With users on the right axes, the legend moves right of them and their titles.
    fig.update_layout(legend={"title": {"text": "percentile"}, **({"x": 1.08, "xanchor": "left"} if any(users) else {})})
    if not sources:
        _note(fig, "no trial reached the measurement phase")
    return fig


# --- (3) recovery timeline -------------------------------------------------------------


def recovery_timeline_chart(run: RunData, summary: pd.DataFrame, *, colors: Mapping[str, str] | None = None) -> go.Figure | None:
    """(3) What the pods did after each fault: a Gantt, one bar row per pod, segments by state.

    For each sweep point's representative trial, every pod alive around the faults gets a
    row (deleted or killed pods first, then their replacements, then the others), labelled
    with the sweep point in its colour; two or more pods that served throughout share one
    row ("3 other pods, serving throughout"), so 10 replicas do not push the story off the slide. Segments are the states of
    `analysis.pod_states` (scheduling, starting, warming up, joining Service, serving, ...);
    faults are dotted lines, the Locust users a grey step line on the right axis. The time
    range runs from just before the first fault to just after the slowest recovery. None
    when the trials recorded no pod events.
    """
    colors = dict(colors or sweep_colors(run_labels(run)))
    experiment = run.experiment
    sources = [s for s in series_sources(run, summary, colors) if len(s.faults)]
    if not sources:
        return None
    first = min(float(s.faults["fault_s"].min()) for s in sources)
    ends = []
    for source in sources:
        settle = source.faults[["phase_total_s", "time_to_recover_s", "capacity_recovered_s"]].max(axis=1)
        settled = source.faults["fault_s"] + settle
        ends.append(float(settled.max()) if settled.notna().any() else source.measure_end - source.measure_start)
    x0 = max(0.0, first - 1.0)
    x1 = min(max(ends) + 1.5, _measure_duration(sources))
    rows: list[str] = []
    segments = []
    drawn: list[SeriesSource] = []
    for source in sources:
        states = analysis.pod_states(source.trial.events, source.measure_start + x0, source.measure_start + x1)
        if not len(states):
            continue
        drawn.append(source)
        targets = {t for value in source.faults["targets"].dropna() for t in str(value).split(";") if t}
        first_fault_ts = float(source.faults["fault_ts"].min())
        created = source.trial.events[(source.trial.events["kind"] == "pod_created")]
        new_pods = set(created.loc[pd.to_numeric(created["ts"], errors="coerce") >= first_fault_ts, "name"].astype(str))
        verb = {"pod-delete": "deleted", "container-kill": "killed"}.get(str(source.faults["action"].iloc[0]), "hit")

        def order(pod: str) -> tuple[int, str]:
            return (0 if pod in targets else 1 if pod in new_pods else 2, pod)

        start, end = source.measure_start + x0, source.measure_start + x1
        steady = states.groupby("pod")["state"].agg(lambda values: set(values) == {"serving"})
        spans = states.groupby("pod").agg(first=("start_ts", "min"), last=("end_ts", "max"))
        untouched = [
            pod for pod in steady.index
            if steady[pod] and pod not in targets and pod not in new_pods
            and spans.at[pod, "first"] <= start + 1e-6 and spans.at[pod, "last"] >= end - 1e-6
        ]  # fmt: skip
        for pod in sorted(states["pod"].unique(), key=order):
            if len(untouched) > 1 and pod in untouched:
                continue
            role = f" ({verb})" if pod in targets else " (new)" if pod in new_pods else ""
            row = f"{_colored(source.label, source.color)} · {html.escape(pod)}{role}"
            rows.append(row)
            pod_rows = states[states["pod"] == pod]
            segments.append(pod_rows.assign(row=row, start_s=pod_rows["start_ts"] - source.measure_start, end_s=pod_rows["end_ts"] - source.measure_start))
        if len(untouched) > 1:
            # Pods that served throughout say one thing together: capacity that never left.
            row = f"{_colored(source.label, source.color)} · {len(untouched)} other pods, serving throughout"
            rows.append(row)
            segments.append(pd.DataFrame({"pod": ["(others)"], "state": ["serving"], "row": [row], "start_s": [x0], "end_s": [x1]}))
    if not segments:
        return None
    frame = pd.concat(segments, ignore_index=True)
    fig = go.Figure()
    for state in analysis.POD_STATES:
        part = frame[frame["state"] == state]
        if not len(part):
            continue
        fig.add_trace(
            go.Bar(
                y=part["row"],
                x=part["end_s"] - part["start_s"],
                base=part["start_s"],
                orientation="h",
                name=state,
                marker={"color": STATE_COLORS[state], "line": {"color": "white", "width": 1}},
                hovertemplate="%{base:.2f}s + %{x:.2f}s<extra>" + state + "</extra>",
                meta=state,
            )
        )
    _fault_markers(fig, sources, [("x", "y")], ("x", "y"))
    title = _title(fault_subject(experiment), "how the pods recovered", sweep_phrase(experiment))
    _style(fig, title)
    longest = max(len(html.unescape(_strip_tags(r))) for r in rows)
    fig.update_layout(barmode="overlay", bargap=0.3, legend={"title": {"text": "pod state"}, "traceorder": "normal"}, margin={"l": min(700, 40 + 11 * longest)})
    fig.update_xaxes(title_text=SECONDS_AXIS, range=[x0, x1])
    fig.update_yaxes(title_text="", categoryorder="array", categoryarray=list(reversed(rows)), showgrid=False)
    from chaoslab.charts_autoscale import add_users  # sibling module that imports this one

    # After the pod axis is styled: update_yaxes would reach the users axis too.
    if add_users(fig, drawn, "x", "y"):
        # The legend moves right of the users axis and its title.
        fig.update_layout(legend={"x": 1.08, "xanchor": "left"})
    return fig


def _strip_tags(text: str) -> str:
    out, inside = [], False
    for char in text:
        if char == "<":
            inside = True
        elif char == ">":
            inside = False
        elif not inside:
            out.append(char)
    return "".join(out)


# --- (4) sweep comparison --------------------------------------------------------------


def sweep_comparison_chart(
    summary: pd.DataFrame,
    comparison: pd.DataFrame,
    experiment: Experiment,
    *,
    colors: Mapping[str, str] | None = None,
    title: str | None = None,
    x_title: str | None = None,
) -> go.Figure:
    """(4) Time to recover and availability against the swept parameter, every trial shown.

    Left: time to recover (s) per trial (its worst fault); right: availability (%) over the
    measurement window per trial (stacked top and bottom instead when there are more than
    four sweep points or long labels, so the labels stay horizontal). Trials are dots, spread sideways by trial number so equal
    values stay visible (a fixed spread, not random, so the chart is reproducible); next to
    them a diamond at the median with its bootstrap 95 % CI as error bars (no bars for a
    single trial). A trial that never recovered is an x at the top of the left panel. The
    SLO and the recovery budget are dashed lines.
    """
    outcomes = analysis.trial_outcomes(summary)
    labels = list(comparison["label"]) if len(comparison) else list(dict.fromkeys(outcomes.get("label", [])))
    colors = dict(colors or sweep_colors(labels))
    labels = [label for label in colors if label in set(labels)] or labels
    slo = experiment.measure.slo.availability
    budget = experiment.measure.recovery_budget
    strip_name = len(experiment.sweep) == 1 and x_title is None
    ticks = [_tick_text(label, strip_name) for label in labels]
    widest = max((len(part) for tick in ticks for part in tick.split("<br>")), default=0)
    # Side by side reads best; many or long sweep labels need the full width: stack them.
    stacked = len(labels) > 4 or widest > 14
    cells = [(1, 1), (2, 1)] if stacked else [(1, 1), (1, 2)]
    titles = ("time to recover", "availability over the measurement")
    if stacked:
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.14, subplot_titles=titles)
    else:
        fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=titles)
    finite = outcomes["time_to_recover_s"].replace([np.inf], np.nan).dropna() if len(outcomes) else pd.Series(dtype=float)
    top = max([*finite.tolist(), budget or 0.0, 0.5]) * 1.15
    never_shown = False
    for position, label in enumerate(labels):
        color = colors[label]
        trials = outcomes[outcomes["label"] == label].sort_values("trial_index") if len(outcomes) else outcomes
        stats = comparison[comparison["label"] == label]
        n = len(trials)
        spread = min(0.05, 0.25 / max(1, n))
        xs = position - 0.13 + (np.arange(n) - (n - 1) / 2) * spread
        for (row, col), metric, scale in zip(cells, ("time_to_recover_s", "availability"), (1.0, 100.0)):
            values = trials[metric].astype(float).to_numpy() if n else np.zeros(0)
            never = np.isinf(values)
            shown = np.where(never, np.nan, values) * scale
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=shown,
                    mode="markers",
                    name=label,
                    legendgroup=label,
                    showlegend=False,  # the x axis names each sweep point; the legend explains the marks
                    marker={"color": color, "size": 13, "opacity": 0.75, "line": {"color": "white", "width": 1}},
                    text=list(trials["trial"]) if n else [],
                    hovertemplate="%{text}: %{y:.3g}<extra>" + html.escape(label) + "</extra>",
                    meta=f"trials:{metric}",
                ),
                row=row,
                col=col,
            )
            if never.any():
                never_shown = True
                fig.add_trace(
                    go.Scatter(
                        x=xs[never], y=np.full(int(never.sum()), top), mode="markers", legendgroup=label, showlegend=False,
                        marker={"color": color, "size": 18, "symbol": "x"}, hovertemplate="never recovered<extra>" + html.escape(label) + "</extra>", meta="never_recovered",
                    ),
                    row=row,
                    col=col,
                )
            if len(stats):
                median = float(stats[f"{metric}_median"].iloc[0]) * scale
                low = float(stats[f"{metric}_ci_low"].iloc[0]) * scale
                high = float(stats[f"{metric}_ci_high"].iloc[0]) * scale
                error = {"type": "data", "symmetric": False, "array": [high - median], "arrayminus": [median - low], "color": color, "thickness": 3, "width": 10}
                fig.add_trace(
                    go.Scatter(
                        x=[position + 0.13], y=[median], mode="markers", legendgroup=label, showlegend=False,
                        marker={"color": color, "size": 20, "symbol": "diamond", "line": {"color": "#222", "width": 1.5}},
                        error_y=error if not (math.isnan(low) or math.isnan(high) or math.isnan(median)) else None,
                        hovertemplate="median %{y:.3g}<extra>" + html.escape(label) + "</extra>",
                        meta=f"median:{metric}",
                    ),
                    row=row,
                    col=col,
                )
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="trial", marker={"color": NEUTRAL, "size": 13}, meta="legend_key"), row=1, col=1)
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="median, 95% CI", marker={"color": NEUTRAL, "size": 18, "symbol": "diamond"}, meta="legend_key"), row=1, col=1)
    if never_shown:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="never recovered", marker={"color": NEUTRAL, "size": 16, "symbol": "x"}, meta="legend_key"), row=1, col=1)
    # The budget label sits above its line (recovery times are mostly below it), the SLO
    # label below its line (availability is mostly above it).
    limits = ((budget, f"recovery budget {budget:g}s" if budget is not None else "", "bottom"), (slo * 100, f"SLO {slo * 100:g}%", "top"))
    for (row, col), (value, text, anchor) in zip(cells, limits):
        if value is None:
            continue
        fig.add_hline(y=value, line={"color": NEUTRAL, "dash": "dash", "width": 2}, row=row, col=col)
        fig.add_annotation(
            x=1.0, xref=f"{_axis_ref(fig, row, 'x', col)} domain", y=value, yref=_axis_ref(fig, row, "y", col), text=text,
            showarrow=False, xanchor="right", yanchor=anchor, font={"size": TICK_FONT_SIZE, "color": NEUTRAL},
        )
    subject = fault_subject(experiment)
    what = f"time to recover and availability by {x_title or sweep_axis_title(experiment).split(' (')[0]}"
    _style(fig, title or _title(subject, what))
    for index, (row, col) in enumerate(cells):
        bottom = not stacked or index == 1
        fig.update_xaxes(
            tickvals=list(range(len(labels))), ticktext=ticks, showticklabels=bottom, range=[-0.6, len(labels) - 0.4],
            title_text=(x_title or sweep_axis_title(experiment)) if bottom else None, row=row, col=col,
        )
    fig.update_yaxes(title_text="time to recover (s)", range=[-top * 0.04, top * 1.08], row=cells[0][0], col=cells[0][1])
    fig.update_yaxes(title_text="availability (%)", row=cells[1][0], col=cells[1][1])
    fig.update_xaxes(tickangle=0)
    fig.update_layout(legend={"title": {"text": ""}, "orientation": "h", "x": 1.0, "xanchor": "right", "y": 1.06, "yanchor": "bottom"}, margin={"r": 40})
    if not labels:
        _note(fig, "no trial was measured")
    return fig


def _tick_text(label: str, strip_name: bool) -> str:
    if strip_name and "=" in label and "," not in label:
        return html.escape(label.split("=", 1)[1])
    return html.escape(label).replace(", ", "<br>").replace(" · ", "<br>").replace(" [", "<br>[")


# --- (5) failures by error class -------------------------------------------------------


def failures_chart(
    summary: pd.DataFrame,
    experiment: Experiment,
    *,
    colors: Mapping[str, str] | None = None,
    title: str | None = None,
) -> go.Figure:
    """(5) Failed requests over the measurement window by error class, a stacked bar per trial.

    Bars are grouped by sweep point and coloured by it; the error class is the fill
    pattern (solid: connection refused, /: reset, x: timeout, dots: HTTP 5xx, -: other), so
    the colour keeps meaning "sweep point". The total is written above each bar, so a
    handful of failures next to hundreds stays readable.
    """
    trials = summary.groupby("trial", sort=False).first().reset_index() if len(summary) else summary
    labels = list(dict.fromkeys(trials["label"])) if len(trials) else []
    colors = dict(colors or sweep_colors(labels))
    order = [label for label in colors if label in set(labels)] or labels
    if len(trials):
        trials = trials.assign(_order=trials["label"].map({label: i for i, label in enumerate(order)})).sort_values(["_order", "trial_index"])
    x = [[_tick_text(label, False) for label in trials["label"]], [f"trial {int(i)}" for i in trials["trial_index"]]] if len(trials) else [[], []]
    bar_colors = [colors.get(label, NEUTRAL) for label in trials["label"]] if len(trials) else []
    fig = go.Figure()
    present = [c for c in FAILURE_CLASSES if len(trials) and trials[c].fillna(0).sum() > 0]
    for name in present:
        pattern = CLASS_PATTERNS[name]
        fig.add_trace(
            go.Bar(
                x=x,
                y=trials[name].fillna(0),
                name=CLASS_NAMES[name],
                showlegend=False,
                marker={"color": bar_colors, "line": {"color": "white", "width": 1}, "pattern": {"shape": pattern, "fgcolor": "white", "fillmode": "overlay", "solidity": 0.45, "size": 14}},
                hovertemplate="%{y} " + CLASS_NAMES[name] + "<extra>%{x}</extra>",
                meta=name,
            )
        )
        fig.add_trace(
            go.Bar(
                x=[x[0][:1], x[1][:1]],
                y=[0],
                name=CLASS_NAMES[name],
                marker={"color": NEUTRAL, "pattern": {"shape": pattern, "fgcolor": "white", "fillmode": "overlay", "solidity": 0.45, "size": 14}},
                hoverinfo="skip",
                meta="legend_key",
            )
        )
    totals = trials["failed_requests"].fillna(0) if len(trials) else pd.Series(dtype=float)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=totals,
            mode="text",
            text=[f"{int(v)}" for v in totals],
            textposition="top center",
            textfont={"size": FONT_SIZE, "color": TEXT_COLOR},
            showlegend=False,
            hoverinfo="skip",
            meta="totals",
        )
    )
    _style(fig, title or _title(fault_subject(experiment), "failed requests by error class", sweep_phrase(experiment)))
    peak = float(totals.max()) if len(totals) else 0.0
    fig.update_layout(barmode="stack", bargap=0.35, legend={"title": {"text": "error class"}, "traceorder": "normal"})
    fig.update_yaxes(title_text="failed requests (count)", range=[0, max(peak * 1.15, 5)])
    fig.update_xaxes(title_text="sweep point and trial")
    if not present and len(trials):
        _note(fig, "no failed request in any trial")
    if not len(trials):
        _note(fig, "no trial was measured")
    return fig
