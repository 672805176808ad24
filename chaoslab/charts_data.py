"""The data charts of a stateful run: who served (identity timeline) and what was lost.

Why a module beside charts.py: these two figures read the data-integrity record
(integrity.csv through `chaoslab.analysis_data`) and appear only in runs with
`load.dataIntegrity`; charts.py (about 900 lines) draws the request charts every run has.
They share its slide style, colours and sweep-point sources.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go

from chaoslab import analysis
from chaoslab.charts import (
    NEUTRAL,
    OKABE_ITO,
    SECONDS_AXIS,
    SeriesSource,
    _colored,
    _fault_markers,
    _style,
    _title,
    fault_subject,
    run_labels,
    series_sources,
    sweep_colors,
    sweep_phrase,
)
from chaoslab.charts_autoscale import add_users
from chaoslab.results import RunData

# Lost writes are drawn in this colour on every slide: the one number that must stand out.
LOST_COLOR = "#D55E00"
ACKNOWLEDGED_COLOR = "#9ecae1"


def has_integrity(run: RunData) -> bool:
    """Whether any trial recorded data-integrity rows (load.dataIntegrity)."""
    return any(trial.integrity is not None and len(trial.integrity) for trial in run.trials)


def identity_timeline_chart(run: RunData, summary: pd.DataFrame, *, colors: Mapping[str, str] | None = None) -> go.Figure | None:
    """(6) Who answered the data-integrity users: one row per sweep point (its ordinal).

    Each bar is one incarnation of the ordinal's pod (`analysis.identity_timeline`): from its
    first to its last answer, labelled with node, volume id and start count, coloured by
    volume id (the same colour means the same data came back); gaps are time nobody
    answered. A diamond marks where the identity came back (`time_to_same_identity_s`).
    Faults are dotted lines, the Locust users a grey step line on the right axis. None
    without data-integrity rows.
    """
    colors = dict(colors or sweep_colors(run_labels(run)))
    sources = [s for s in series_sources(run, summary, colors) if s.trial.integrity is not None]
    if not sources:
        return None
    volume_colors: dict[str, str] = {}
    fig = go.Figure()
    rows = []
    marks_x, marks_y, marks_text = [], [], []
    drawn: list[SeriesSource] = []
    for source in sources:
        timeline = analysis.identity_timeline(source.trial.integrity)
        if not len(timeline):
            continue
        drawn.append(source)
        ordinal = timeline["pod"].iloc[0]
        row = f"{_colored(source.label, source.color)} · {html.escape(str(ordinal))}"
        rows.append(row)
        for item in timeline.itertuples(index=False):
            color = volume_colors.setdefault(str(item.volume), OKABE_ITO[(len(volume_colors) + 2) % len(OKABE_ITO)])
            start = float(item.start_ts) - source.measure_start
            width = max(float(item.end_ts) - float(item.start_ts), source.bucket)
            text = f"{item.node} · volume {str(item.volume)[:6] or 'none'} · start {int(item.starts) if pd.notna(item.starts) else '?'}"
            fig.add_trace(
                go.Bar(
                    y=[row],
                    x=[width],
                    base=[start],
                    orientation="h",
                    marker={"color": color, "line": {"color": "white", "width": 1}},
                    text=[text],
                    textposition="inside",
                    insidetextanchor="middle",
                    name=f"volume {str(item.volume)[:6]}",
                    legendgroup=str(item.volume),
                    showlegend=False,
                    hovertemplate=f"{html.escape(str(item.pod))} {html.escape(text)}<br>%{{base:.2f}}s + %{{x:.2f}}s<extra></extra>",
                )
            )
        for fault in source.faults.itertuples(index=False):
            back = getattr(fault, "time_to_same_identity_s", float("nan"))
            if pd.notna(back):
                marks_x.append(float(fault.fault_s) + float(back))
                marks_y.append(row)
                marks_text.append(f"same identity back after {float(back):.1f}s")
    if not rows:
        return None
    if marks_x:
        fig.add_trace(
            go.Scatter(
                x=marks_x,
                y=marks_y,
                mode="markers",
                marker={"symbol": "diamond", "size": 20, "color": "#000000", "line": {"color": "white", "width": 2}},
                name="same name and volume back",
                hovertext=marks_text,
                hoverinfo="text",
            )
        )
    _fault_markers(fig, sources, [("x", "y")], ("x", "y"))
    title = _title(fault_subject(run.experiment), "which identity served, with which volume", sweep_phrase(run.experiment))
    _style(fig, title)
    fig.update_layout(barmode="overlay", bargap=0.35, legend={"orientation": "h", "y": -0.15})
    fig.update_xaxes(title_text=SECONDS_AXIS, range=[0, max(s.measure_end - s.measure_start for s in sources)])
    fig.update_yaxes(title_text="", categoryorder="array", categoryarray=list(reversed(rows)), showgrid=False)
    # After the row axis is styled: update_yaxes would reach the users axis too.
    if add_users(fig, drawn, "x", "y"):
        fig.update_layout(margin={"r": 120})
    return fig


def writes_chart(summary: pd.DataFrame, run: RunData, *, colors: Mapping[str, str] | None = None) -> go.Figure | None:
    """(7) Acknowledged against lost writes per sweep point (medians across its trials).

    One pair of bars per sweep point: writes the service acknowledged, and of those the
    ones later read back as missing (`analysis.lost_writes`), labelled "N of M lost".
    None without data-integrity numbers.
    """
    trials = summary.groupby("trial", sort=False).first()
    trials = trials[trials["acknowledged_writes"].notna()]
    if not len(trials):
        return None
    points = trials.groupby("label", sort=False)[["acknowledged_writes", "lost_writes"]].median()
    order = [label for label in run_labels(run) if label in points.index] or list(points.index)
    points = points.loc[order]
    colors = dict(colors or sweep_colors(order))
    ticks = [_colored(label, colors.get(label, NEUTRAL)) for label in order]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(x=ticks, y=points["acknowledged_writes"], name="acknowledged", marker={"color": ACKNOWLEDGED_COLOR}, text=[f"{v:.0f}" for v in points["acknowledged_writes"]], textposition="outside")
    )
    fig.add_trace(
        go.Bar(
            x=ticks,
            y=points["lost_writes"],
            name="lost (acknowledged, then read back missing)",
            marker={"color": LOST_COLOR},
            text=[f"{lost:.0f} of {acked:.0f} lost" for lost, acked in zip(points["lost_writes"], points["acknowledged_writes"])],
            textposition="outside",
        )
    )
    title = _title(fault_subject(run.experiment), "acknowledged and lost writes", sweep_phrase(run.experiment))
    _style(fig, title)
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": -0.15})
    fig.update_yaxes(title_text="writes", rangemode="tozero")
    return fig
