"""The report of a run (or of several runs side by side): tables, one HTML file, slide images.

Why it exists: a results folder is data; people need a page they can open offline and
pictures they can paste into slides. `build_report` rebuilds all of it from the folder
alone (`chaoslab report RUN_DIR`), `build_comparison` puts several runs side by side
(`chaoslab compare`). Writing happens only here: analysis and charts stay pure.

- summary.csv and comparison.csv are written atomically (`results.atomic_write_frame`).
- report.html is self-contained: plotly.js is inlined once in <head>, each chart is a div
  (no network, no CDN, no MathJax).
- charts/*.png and *.svg are rendered by kaleido (>= 1) driving a headless Chromium, all
  images in ONE kaleido session: starting Chromium costs ~2 s, each image after that a
  few hundred ms. Without Chromium the HTML is still written and a warning says how to
  install it; images are staged in a temporary folder and moved into place one by one, so
  a failed export never leaves half-written files.
- A partial run (aborted, failed, a trial without load data) still gets a report: a chart
  without data is left out with a note saying why.
"""

from __future__ import annotations

import contextlib
import html
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from chaoslab import analysis, charts, charts_data
from chaoslab.errors import ResultsError
from chaoslab.reaper import Reaper
from chaoslab.results import RunData, atomic_write_frame, atomic_write_text, read_run
from chaoslab.units import format_duration

# The charts of a report, in slide order: file stem, heading, the question it answers.
CHART_ORDER = (
    ("1-availability", "Availability and throughput", "Did clients notice, for how long, and did capacity come back?"),
    ("2-latency", "Latency", "Were the requests that succeeded slower while the service recovered?"),
    ("3-recovery", "Recovery timeline", "Where did the recovery time go: scheduling, starting, readiness, endpoints?"),
    ("4-sweep", "Sweep comparison", "How does the setting change time to recover and availability, trial by trial?"),
    ("5-failures", "Failures by error class", "How did requests fail: refused, reset, timed out, 5xx?"),
)
# Only for a run whose trials had a HorizontalPodAutoscaler (autoscaler.csv).
AUTOSCALING_CHART = (
    "6-autoscaling",
    "Autoscaling",
    "When did the autoscaler add pods, what CPU did it see, and what did the algorithm ask for?",
)
CHART_FILE_STEMS = tuple(stem for stem, _, _ in CHART_ORDER)
# Drawn only for runs with data-integrity users (load.dataIntegrity, charts_data.py).
DATA_CHART_ORDER = (
    ("6-identity", "Identity timeline", "Which pod answered, on which node, with which volume, and when did it come back?"),
    ("7-writes", "Lost writes", "Of the writes the service acknowledged, how many were lost?"),
)
IMAGE_FORMATS = ("png", "svg")
# Seconds kaleido may take for one image before giving up (its default is 90 s; a chart of
# a 1-hour trial renders in well under 5 s).
IMAGE_TIMEOUT_S = 120
# The folder one export renders into before its images replace the old ones.
STAGING_PREFIX = ".charts-"
# Browsers kaleido can drive, by executable name (the Debian package installs `chromium`).
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
INSTALL_HINT = (
    "install Chromium and fonts (Debian/Ubuntu: `apt-get install -y chromium fonts-dejavu-core fonts-liberation`, "
    "or `kaleido_get_chrome`), or point BROWSER_PATH at a Chrome/Chromium binary, then run `chaoslab report RUN_DIR` again"
)


class ReportWarning(UserWarning):
    """Something the report could not do (e.g. PNG/SVG export without Chromium)."""


@dataclass(frozen=True, eq=False)
class ReportResult:
    """What a report build wrote and found.

    html: report.html. charts: the PNG and SVG files written (empty when skipped).
    summary, comparison: the tables written as summary.csv and comparison.csv.
    verdict: SLO / recovery budget judgement (the engine exits 1 when not passed).
    warnings: what could not be done, in words for the user (also in the HTML).
    """

    html: Path
    charts: tuple[Path, ...]
    summary: pd.DataFrame
    comparison: pd.DataFrame
    verdict: analysis.Verdict
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChartSlot:
    """One place in the report: a figure, or the reason it is missing."""

    stem: str
    heading: str
    question: str
    figure: go.Figure | None
    note: str = ""


# --- one run ---------------------------------------------------------------------------


def build_report(run_dir: Path, *, images: bool = True) -> ReportResult:
    """Rebuild summary.csv, comparison.csv, report.html and charts/ of one results folder.

    Raises ResultsError (naming the path) when the folder is not a readable run or cannot
    be written. A partial run builds; charts without data are left out with a note.
    """
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    summary = analysis.summary_table(run)
    comparison = analysis.comparison_table(summary, run.sweep_paths, np.random.default_rng(run.experiment.seed))
    verdict = analysis.verdict(summary, run.experiment.measure)
    _write_table(run_dir / "summary.csv", summary)
    _write_table(run_dir / "comparison.csv", comparison)
    colors = charts.sweep_colors(charts.run_labels(run))
    slots = _run_slots(run, summary, comparison, colors)
    html_path, chart_paths, notes = _write_outputs(
        run_dir,
        slots,
        [],
        images,
        lambda notes, paths: _run_page(run, summary, comparison, verdict, slots, notes, paths),
    )
    return ReportResult(html_path, chart_paths, summary, comparison, verdict, notes)


def _run_slots(run: RunData, summary: pd.DataFrame, comparison: pd.DataFrame, colors: Mapping[str, str]) -> list[ChartSlot]:
    measured = bool(len(summary)) and summary["availability"].notna().any()
    has_faults = bool(len(summary)) and summary["fault_id"].notna().any()
    builders: dict[str, tuple[Callable[[], go.Figure | None], str]] = {
        "1-availability": (lambda: charts.availability_chart(run, summary, colors=colors), "no trial has load data from its measurement window"),
        "2-latency": (lambda: charts.latency_chart(run, summary, colors=colors), "no trial has load data from its measurement window"),
        "3-recovery": (
            lambda: charts.recovery_timeline_chart(run, summary, colors=colors),
            "no fault was injected, or the trials recorded no pod events after it" if has_faults else "no fault was injected while measuring",
        ),
        "4-sweep": (lambda: charts.sweep_comparison_chart(summary, comparison, run.experiment, colors=colors), "no trial was measured"),
        "5-failures": (lambda: charts.failures_chart(summary, run.experiment, colors=colors), "no trial was measured"),
    }
    order = CHART_ORDER
    if charts_data.has_integrity(run):
        builders["6-identity"] = (lambda: charts_data.identity_timeline_chart(run, summary, colors=colors), "no identity was recorded")
        builders["7-writes"] = (lambda: charts_data.writes_chart(summary, run, colors=colors), "no write was recorded")
        order = (*CHART_ORDER, *DATA_CHART_ORDER)
    slots = []
    for stem, heading, question in order:
        build, missing = builders[stem]
        if not measured:
            slots.append(ChartSlot(stem, heading, question, None, missing))
            continue
        figure, note = _safely(build)
        slots.append(ChartSlot(stem, heading, question, figure, note or ("" if figure is not None else missing)))
    if measured and any(len(trial.autoscaler) for trial in run.trials):
        from chaoslab.charts_autoscale import autoscaling_chart

        stem, heading, question = AUTOSCALING_CHART
        figure, note = _safely(lambda: autoscaling_chart(run, summary, colors=colors))
        slots.append(ChartSlot(stem, heading, question, figure, note or ("" if figure is not None else "no autoscaler evaluation was recorded")))
    return slots


def _safely(build: Callable[[], go.Figure | None]) -> tuple[go.Figure | None, str]:
    """Build a chart; data a chart cannot draw becomes a note in the report, not a crash."""
    try:
        return build(), ""
    except (ValueError, KeyError, IndexError) as exc:
        return None, f"left out: the data could not be drawn ({type(exc).__name__}: {exc})"


# --- several runs ----------------------------------------------------------------------


def build_comparison(run_dirs: Sequence[Path], out_dir: Path, *, images: bool = True) -> ReportResult:
    """A comparison report across runs (two tuning choices, sim against a real cluster, ...).

    Each run is labelled by its experiment name (and folder, when names repeat; the page
    lists every label with its folder). Writes into `out_dir`:
    summary.csv (every run's rows, with `run` and `run_dir` columns and labels
    `<run> · <sweep point>`), comparison.csv (one row per run x sweep point), report.html
    with the key numbers side by side and the cross-run charts, and charts/*.png|svg.
    The verdict passes only if every run passes. Raises ResultsError naming the path.
    """
    if not run_dirs:
        raise ResultsError("compare needs at least one results folder, e.g. chaoslab compare results/a results/b")
    out_dir = Path(out_dir)
    runs = [read_run(Path(d)) for d in run_dirs]
    labels = _run_labels(runs)
    summaries, comparisons, items, reasons = [], [], [], []
    passed = True
    for index, (run, label) in enumerate(zip(runs, labels)):
        summary = analysis.summary_table(run)
        verdict = analysis.verdict(summary, run.experiment.measure)
        passed = passed and verdict.passed
        reasons.extend(f"{label}: {reason}" for reason in verdict.reasons)
        relabelled = _relabel(summary, label, run, index)
        summaries.append(relabelled)
        items.append(charts.LabelledRun(label, run, summary))
        table = analysis.comparison_table(relabelled, _sweep_columns(relabelled), np.random.default_rng(run.experiment.seed))
        table.insert(0, "run", label)
        comparisons.append(table)
    summary = pd.concat(summaries, ignore_index=True)
    comparison = pd.concat(comparisons, ignore_index=True)
    verdict = analysis.Verdict(passed, tuple(reasons))
    _write_table(out_dir / "summary.csv", summary)
    _write_table(out_dir / "comparison.csv", comparison)
    point_labels = [f"{label} · {point}" if run.sweep_paths else label for run, label in zip(runs, labels) for point in charts.run_labels(run)]
    colors = charts.sweep_colors(point_labels)
    experiment = runs[0].experiment
    subject = charts.fault_subject(experiment)
    measured = bool(len(summary)) and summary["availability"].notna().any()
    slots = []
    builders = {
        "1-availability": lambda: charts.compare_availability_chart(items, colors=colors),
        "4-sweep": lambda: charts.sweep_comparison_chart(
            summary, comparison, experiment, colors=colors, title=f"{subject}: time to recover and availability across runs", x_title="run · sweep point"
        ),
        "5-failures": lambda: charts.failures_chart(summary, experiment, colors=colors, title=f"{subject}: failed requests by error class across runs"),
    }
    for stem, heading, question in CHART_ORDER:
        if stem not in builders:
            continue
        if not measured:
            slots.append(ChartSlot(stem, heading, question, None, "no run has measured trials"))
            continue
        figure, note = _safely(builders[stem])
        slots.append(ChartSlot(stem, heading, question, figure, note))
    notes: list[str] = []
    if len({(r.experiment.measure.slo.availability, r.experiment.measure.slo.window) for r in runs}) > 1:
        notes.append("the runs have different SLOs; the charts draw the first run's, each verdict uses its own")
    html_path, chart_paths, all_notes = _write_outputs(
        out_dir,
        slots,
        notes,
        images,
        lambda notes, paths: _comparison_page(runs, labels, summary, comparison, verdict, slots, notes, paths),
    )
    return ReportResult(html_path, chart_paths, summary, comparison, verdict, all_notes)


def _write_outputs(
    out_dir: Path,
    slots: Sequence[ChartSlot],
    notes: list[str],
    images: bool,
    render_page: Callable[[Sequence[str], tuple[Path, ...]], str],
) -> tuple[Path, tuple[Path, ...], tuple[str, ...]]:
    """Export the charts (when asked), write report.html, and surface every note as a warning."""
    chart_paths: tuple[Path, ...] = ()
    if images:
        chart_paths, warning = export_images({s.stem: s.figure for s in slots if s.figure is not None}, out_dir / "charts")
        if warning:
            notes.append(warning)
    html_path = out_dir / "report.html"
    _write(html_path, render_page(notes, chart_paths))
    for note in notes:
        warnings.warn(note, ReportWarning, stacklevel=3)
    return html_path, chart_paths, tuple(notes)


def _run_labels(runs: Sequence[RunData]) -> list[str]:
    """Short names for runs, fit for chart legends: the experiment name when that tells them
    apart, else `name [folder]` with the folder's `<name>-` prefix dropped (its timestamp),
    else numbered. The report lists each label with its folder."""
    names = [run.experiment.name for run in runs]
    if len(set(names)) == len(names):
        return names
    labels = []
    for name, run in zip(names, runs):
        folder = run.path.name
        suffix = folder[len(name) + 1 :] if folder.startswith(f"{name}-") and len(folder) > len(name) + 1 else folder
        labels.append(f"{name} [{suffix}]")
    if len(set(labels)) < len(labels):
        labels = [f"{label} #{index}" for index, label in enumerate(labels, start=1)]
    return labels


def _relabel(summary: pd.DataFrame, label: str, run: RunData, index: int) -> pd.DataFrame:
    frame = summary.copy()
    frame.insert(0, "run", label)
    frame.insert(1, "run_dir", str(run.path))
    frame["label"] = [f"{label} · {value}" if run.sweep_paths else label for value in frame["label"]]
    # Points must stay distinct across runs when the comparison groups by them.
    frame["point"] = frame["point"] + 1000 * (index + 1)
    frame["trial"] = [f"{label}/{trial}" for trial in frame["trial"]]
    return frame


def _sweep_columns(summary: pd.DataFrame) -> list[str]:
    known = {"run", "run_dir", *analysis.SUMMARY_LEAD_COLUMNS, *analysis.SUMMARY_COLUMNS}
    return [c for c in summary.columns if c not in known]


# --- images ----------------------------------------------------------------------------


def find_browser() -> str | None:
    """The Chrome/Chromium kaleido will drive: BROWSER_PATH if set (and present), else the first on PATH."""
    explicit = os.environ.get("BROWSER_PATH")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def export_images(figures: Mapping[str, go.Figure], charts_dir: Path) -> tuple[tuple[Path, ...], str | None]:
    """Write `<stem>.png` and `<stem>.svg` (1600x900) of each figure into `charts_dir`.

    One kaleido session (one Chromium) renders every image, through kaleido's batch API:
    unlike `kaleido.start_sync_server()`, whose calls block forever when its browser fails
    to start, a failure here comes back as an exception. Returns the written paths and a
    warning for the user (None when all went well): without a browser, nothing is
    rendered and the warning says how to install one.
    """
    if not figures:
        return (), None
    browser = find_browser()
    if browser is None:
        return (), f"PNG/SVG charts skipped: no Chrome/Chromium found for kaleido; {INSTALL_HINT}."
    import kaleido  # imported here: only image export needs it
    from kaleido.errors import KaleidoError

    try:
        charts_dir.mkdir(parents=True, exist_ok=True)
        for stale in charts_dir.glob(f"{STAGING_PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by an engine killed while exporting
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=charts_dir))
        # Kaleido's page, Chromium's profile and Chromium's own scratch files go in one
        # folder of ours; a reaper removes it and the staging folder even if the engine
        # is SIGKILLed mid-export.
        # A short path under the system's temporary folder: Chromium puts a Unix socket
        # in its profile, and socket paths are limited to 108 bytes.
        scratch = Path(tempfile.mkdtemp(prefix="chaoslab-export-"))
    except OSError as exc:
        raise ResultsError(f"{charts_dir}: cannot write charts ({exc})") from exc
    reaper = Reaper(remove=[scratch, staging])
    page = scratch / "index.html"
    try:
        page.write_text(kaleido.PageGenerator(mathjax=False).generate_index())
        (scratch / "browser").mkdir()
        jobs = [
            {
                "fig": figure,
                "path": staging / f"{stem}.{fmt}",
                "opts": {"format": fmt, "width": charts.SLIDE_WIDTH, "height": charts.SLIDE_HEIGHT, "scale": 1},
            }
            for stem, figure in figures.items()
            for fmt in IMAGE_FORMATS
        ]
        try:
            # Chromium makes its own scratch files under $TMPDIR and takes the
            # environment as it is (choreographer copies os.environ): point it at the
            # scratch folder for this one call.
            with _environment_variable("TMPDIR", str(scratch / "browser")):
                kaleido.write_fig_from_object_sync(
                    jobs,
                    kopts={
                        "n": 1,
                        "path": browser,
                        "timeout": IMAGE_TIMEOUT_S,
                        "page_generator": page,
                        "tmp_dir": str(scratch / "browser"),
                    },
                    cancel_on_error=True,
                )
        except (RuntimeError, KaleidoError, OSError, TimeoutError) as exc:
            return (), f"PNG/SVG charts skipped: kaleido could not render with {browser} ({type(exc).__name__}: {exc}); {INSTALL_HINT}."
        written = []
        for job in jobs:
            target = charts_dir / job["path"].name
            os.replace(job["path"], target)
            written.append(target)
        _remove_stale(charts_dir, {p.name for p in written})
        return tuple(written), None
    except OSError as exc:
        raise ResultsError(f"{charts_dir}: cannot write charts ({exc})") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        reaper.close()  # it removes the scratch folder


@contextlib.contextmanager
def _environment_variable(name: str, value: str) -> Iterator[None]:
    """`name=value` in this process's environment for the block, as it was after."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _remove_stale(charts_dir: Path, keep: set[str]) -> None:
    """Images of charts this report no longer draws (e.g. a rebuilt partial run)."""
    for stem in (*CHART_FILE_STEMS, AUTOSCALING_CHART[0], *(stem for stem, _, _ in DATA_CHART_ORDER)):
        for fmt in IMAGE_FORMATS:
            path = charts_dir / f"{stem}.{fmt}"
            if path.name not in keep and path.exists():
                path.unlink()


# --- writing ---------------------------------------------------------------------------


def _write_table(path: Path, frame: pd.DataFrame) -> None:
    try:
        atomic_write_frame(path, frame)
    except OSError as exc:
        raise ResultsError(f"{path}: cannot write ({exc})") from exc


def _write(path: Path, text: str) -> None:
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise ResultsError(f"{path}: cannot write ({exc})") from exc


# --- HTML ------------------------------------------------------------------------------

_CSS = """
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 1500px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 30px; margin: 8px 0 4px; } h2 { font-size: 24px; margin-top: 40px; border-bottom: 2px solid #ddd; padding-bottom: 6px; }
h3 { font-size: 20px; margin: 28px 0 4px; } p.question { color: #555; margin: 0 0 8px; font-style: italic; }
.banner { padding: 14px 18px; border-radius: 6px; margin: 14px 0; font-size: 18px; }
.banner.bad { background: #fde8e1; border-left: 8px solid #D55E00; } .banner.good { background: #e3f2ec; border-left: 8px solid #009E73; }
.banner.warn { background: #fff6db; border-left: 8px solid #E69F00; } .banner.status { background: #fde8e1; border-left: 8px solid #D55E00; font-size: 22px; font-weight: bold; }
table { border-collapse: collapse; margin: 8px 0; font-size: 15px; } th, td { border-bottom: 1px solid #e3e3e3; padding: 5px 10px; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; white-space: nowrap; } table.facts td { text-align: left; }
.swatch { display: inline-block; width: 14px; height: 14px; border-radius: 3px; margin-right: 6px; vertical-align: -2px; }
.note { color: #8a4b00; } pre { background: #f5f5f5; padding: 12px; overflow-x: auto; font-size: 13px; }
.ci { color: #666; font-size: 13px; white-space: nowrap; } .chart { width: 100%; }
"""


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n"
        f"<script type=\"text/javascript\">{get_plotlyjs()}</script>\n</head>\n<body><main>\n{body}\n</main></body>\n</html>\n"
    )


def _figure_html(stem: str, figure: go.Figure) -> str:
    """A chart as a div for the page: it fills the page width; slide size stays for images."""
    shown = go.Figure(figure)
    shown.update_layout(width=None, height=None, autosize=True)
    return pio.to_html(
        shown,
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        div_id=f"chart-{stem}",
        default_width="100%",
        default_height="760px",
        config={
            "displaylogo": False,
            "responsive": True,
            "toImageButtonOptions": {"format": "svg", "filename": stem, "width": charts.SLIDE_WIDTH, "height": charts.SLIDE_HEIGHT},
        },
    )


def _charts_html(slots: Sequence[ChartSlot], chart_paths: Sequence[Path]) -> str:
    parts = ["<h2>Charts</h2>"]
    names = {p.name for p in chart_paths}
    for slot in slots:
        parts.append(f"<h3>{html.escape(slot.heading)}</h3><p class=\"question\">{html.escape(slot.question)}</p>")
        if slot.figure is None:
            parts.append(f"<p class=\"note\">Chart left out: {html.escape(slot.note)}.</p>")
            continue
        parts.append(f"<div class=\"chart\">{_figure_html(slot.stem, slot.figure)}</div>")
        files = [f"<a href=\"charts/{n}\">{n}</a>" for n in (f"{slot.stem}.{fmt}" for fmt in IMAGE_FORMATS) if n in names]
        if files:
            parts.append(f"<p>For slides: {' · '.join(files)}</p>")
    return "\n".join(parts)


def _status_html(run: RunData) -> str:
    status = run.status
    parts = []
    if status != "completed":
        done = len(run.journal.get("trials_done") or [])
        planned = len(run.journal.get("plan") or []) or len(run.trials)
        error = run.journal.get("error")
        text = f"This run is {html.escape(status.upper())}: {done} of {planned} trials finished; the numbers below cover only what was measured."
        if error:
            text += f"<br>Error: {html.escape(str(error))}"
        parts.append(f"<div class=\"banner status\">{text}</div>")
    unfinished = [t for t in run.trials if t.info.status != "completed"]
    if unfinished:
        listed = ", ".join(f"{html.escape(t.id)} ({html.escape(t.info.status)})" for t in unfinished)
        parts.append(f"<div class=\"banner warn\">Trials that did not complete (not judged): {listed}</div>")
    return "\n".join(parts)


def _verdict_html(verdict: analysis.Verdict, slo_text: str, budget: float | None) -> str:
    targets = f"SLO {slo_text}" + (f", recovery budget {format_duration(budget)}" if budget is not None else "")
    if verdict.passed:
        return f"<div class=\"banner good\"><b>Passed</b> ({html.escape(targets)}): every completed trial met them.</div>"
    items = "".join(f"<li>{html.escape(r)}</li>" for r in verdict.reasons)
    return f"<div class=\"banner bad\"><b>Missed</b> ({html.escape(targets)}):<ul>{items}</ul></div>"


def _warnings_html(notes: Sequence[str]) -> str:
    return "\n".join(f"<div class=\"banner warn\">{html.escape(n)}</div>" for n in notes)


def _slo_text(run: RunData) -> str:
    slo = run.experiment.measure.slo
    return f"{slo.availability * 100:g}% over {format_duration(slo.window)}"


def _facts_html(run: RunData) -> str:
    experiment = run.experiment
    journal = run.journal
    timeline = experiment.timeline
    load = experiment.load
    planned = len(journal.get("plan") or []) or len(run.trials)
    rows = [
        ("folder", str(run.path)),
        ("status", run.status),
        ("backend", str(journal.get("backend") or experiment.cluster.backend)),
        *([("service", str(journal["service_network"]))] if journal.get("service_network") else []),
        ("faults", charts.fault_subject(experiment)),
        ("sweep", ", ".join(f"{k}: {v}" for k, v in experiment.sweep.items()) or "none"),
        ("trials", f"{experiment.trials} per sweep point, {len(journal.get('trials_done') or [])} of {planned} done"),
        ("load", f"{load.users} users, wait {format_duration(load.wait_time.min)}-{format_duration(load.wait_time.max)}, timeout {format_duration(load.timeout)}"),
        ("timeline", f"warmup {format_duration(timeline.warmup)}, measure {format_duration(timeline.duration)}, cooldown {format_duration(timeline.cooldown)}"),
        ("SLO", _slo_text(run)),
        ("recovery budget", format_duration(experiment.measure.recovery_budget) if experiment.measure.recovery_budget is not None else "none"),
        ("bucket", format_duration(experiment.measure.bucket)),
        ("started", _utc(journal.get("started"))),
        ("ended", _utc(journal.get("ended"))),
        ("chaoslab", str(journal.get("chaoslab", "?"))),
    ]
    cells = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table class=\"facts\">{cells}</table>"


def _utc(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    return datetime.fromtimestamp(float(value), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pct(value: float) -> str:
    return "–" if _missing(value) else f"{value * 100:.2f}%"


def _seconds(value: float) -> str:
    return "–" if _missing(value) else f"{value:.2f} s"


def _count(value: float) -> str:
    return "–" if _missing(value) else f"{value:.0f}"


def _ms(value: float) -> str:
    return "–" if _missing(value) else f"{value:.1f} ms"


def _fraction(value: float) -> str:
    return "–" if _missing(value) else f"{value * 100:.0f}%"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _with_ci(row: Mapping[str, Any], metric: str, fmt: Callable[[float], str]) -> str:
    median = row.get(f"{metric}_median")
    low, high = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    text = fmt(median)
    if not (_missing(low) or _missing(high)):
        text += f"<br><span class=\"ci\">95% CI {fmt(low)} – {fmt(high)}</span>"
    return text


# The key numbers of a sweep point (median across trials): (title, comparison metric,
# plain-text formatter). The report's table and the terminal table after a run show these.
KEY_NUMBERS = (
    ("availability", "availability", _pct),
    ("time to recover", "time_to_recover_s", _seconds),
    ("capacity back", "capacity_recovered_s", _seconds),
    ("error window", "error_window_s", _seconds),
    ("failed requests", "failed_requests", _count),
    ("p99 during fault", "p99_ms_during", _ms),
    ("throughput dip", "throughput_dip", _fraction),
)
# A run with a load spike and an autoscaler but no fault: these instead (the fault
# metrics would all be empty).
AUTOSCALE_KEY_NUMBERS = (
    ("availability", "availability", _pct),
    ("failed in spike", "spike_failed_requests", _count),
    ("p95 in spike", "p95_ms_spike", _ms),
    ("first scale-up", "first_scale_up_s", _seconds),
    ("to capacity", "time_to_capacity_s", _seconds),
    ("peak replicas", "peak_replicas", _count),
)
# Shown after those only when a run measured writes (load.dataIntegrity).
DATA_KEY_NUMBERS = (
    ("lost writes", "lost_writes", _count),
    ("acknowledged writes", "acknowledged_writes", _count),
)


def key_numbers(comparison: pd.DataFrame) -> tuple[tuple[str, str, Callable[[float], str]], ...]:
    """KEY_NUMBERS (AUTOSCALE_KEY_NUMBERS for a run whose points had a spike and no
    fault), then DATA_KEY_NUMBERS when any sweep point has data-integrity numbers."""
    def measured(metric: str) -> bool:
        column = f"{metric}_median"
        return column in comparison.columns and bool(comparison[column].notna().any())

    spike_only = measured("p95_ms_spike") and not any(
        measured(m) for m in ("time_to_recover_s", "error_window_s", "throughput_dip")
    )
    chosen = AUTOSCALE_KEY_NUMBERS if spike_only else KEY_NUMBERS
    return (*chosen, *DATA_KEY_NUMBERS) if measured("lost_writes") else chosen


def _key_numbers_html(comparison: pd.DataFrame, colors: Mapping[str, str]) -> str:
    if not len(comparison):
        return "<p class=\"note\">No trial was measured, so there are no numbers yet.</p>"
    numbers = key_numbers(comparison)
    head = "<tr><th>sweep point</th><th>trials</th>" + "".join(f"<th>{html.escape(name)}<br><span class=\"ci\">median</span></th>" for name, _, _ in numbers) + "</tr>"
    body = []
    for row in comparison.to_dict("records"):
        label = str(row["label"])
        swatch = f"<span class=\"swatch\" style=\"background:{colors.get(label, charts.NEUTRAL)}\"></span>"
        cells = [f"<td>{swatch}{html.escape(label)}</td>", f"<td>{int(row['trials'])}</td>"]
        for _, metric, fmt in numbers:
            text = _with_ci(row, metric, fmt)
            if metric == "time_to_recover_s" and row.get("never_recovered"):
                never = int(row["never_recovered"])
                text += f"<br><span class=\"note\">{never} trial{'s' if never != 1 else ''} never recovered</span>"
            cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = (
        "<p class=\"ci\">Medians across trials with bootstrap 95% confidence intervals (none for a single trial). "
        "For a trial with several faults, fault metrics are its worst fault. Availability is over the measurement window; "
        "time to recover: first moment after the fault from which the success ratio stays at or above the SLO over the SLO window "
        "(0: never dipped; a trial that never recovered counts as the slowest).</p>"
    )
    return f"<table>{head}{''.join(body)}</table>{caption}"


def _dip_notes_html(summary: pd.DataFrame) -> str:
    """Beside the throughput dip: when it was the clients not sending (analysis.throughput_dip_notes)."""
    notes = analysis.throughput_dip_notes(summary)
    return "".join(f"<p class=\"note dip\"><b>Throughput dip:</b> {html.escape(note)}</p>" for note in notes)


_TRIAL_COLUMNS = (
    ("trial", "trial", str),
    ("sweep point", "label", str),
    ("status", "status", str),
    ("fault", "fault_id", str),
    ("action", "action", str),
    ("at", "fault_s", _seconds),
    ("availability", "availability", _pct),
    ("in fault window", "fault_window_availability", _pct),
    ("first error", "time_to_first_error_s", _seconds),
    ("error window", "error_window_s", _seconds),
    ("time to recover", "time_to_recover_s", _seconds),
    ("capacity back", "capacity_recovered_s", _seconds),
    ("failed", "failed_requests", _count),
    ("refused", "refused", _count),
    ("reset", "reset", _count),
    ("timeout", "timeout", _count),
    ("5xx", "http_5xx", _count),
    ("p99 during", "p99_ms_during", _ms),
    ("replacement ready", "phase_total_s", _seconds),
)


def _trials_html(summary: pd.DataFrame) -> str:
    if not len(summary):
        return ""
    head = "<tr>" + "".join(f"<th>{html.escape(name)}</th>" for name, _, _ in _TRIAL_COLUMNS) + "</tr>"
    body = []
    for row in summary.to_dict("records"):
        cells = []
        for _, column, fmt in _TRIAL_COLUMNS:
            value = row.get(column)
            cells.append(f"<td>{html.escape(fmt(value)) if fmt is not str else html.escape('–' if _missing(value) else str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<details><summary><b>Every trial and fault</b> (summary.csv has all columns)</summary>"
        f"<table>{head}{''.join(body)}</table></details>"
    )


def _files_html(chart_paths: Sequence[Path]) -> str:
    links = ["<a href=\"summary.csv\">summary.csv</a>", "<a href=\"comparison.csv\">comparison.csv</a>"]
    if chart_paths:
        links.append(f"charts/ ({len(chart_paths)} images)")
    return f"<p>Files: {' · '.join(links)}</p>"


def _run_page(
    run: RunData,
    summary: pd.DataFrame,
    comparison: pd.DataFrame,
    verdict: analysis.Verdict,
    slots: Sequence[ChartSlot],
    notes: Sequence[str],
    chart_paths: Sequence[Path],
) -> str:
    experiment = run.experiment
    colors = charts.sweep_colors(charts.run_labels(run))
    body = [
        f"<h1>{html.escape(experiment.name)}</h1>",
        f"<p>{html.escape(experiment.description)}</p>" if experiment.description else "",
        _status_html(run),
        _verdict_html(verdict, _slo_text(run), experiment.measure.recovery_budget),
        _warnings_html(notes),
        "<h2>Key numbers</h2>",
        _key_numbers_html(comparison, colors),
        _dip_notes_html(summary),
        _trials_html(summary),
        _charts_html(slots, chart_paths),
        "<h2>Experiment</h2>",
        _facts_html(run),
        "<details><summary><b>Resolved experiment (experiment.yaml)</b></summary>",
        f"<pre>{html.escape(run.experiment_text)}</pre></details>",
        _files_html(chart_paths),
    ]
    return _page(f"chaoslab report: {experiment.name}", "\n".join(part for part in body if part))


def _comparison_page(
    runs: Sequence[RunData],
    labels: Sequence[str],
    summary: pd.DataFrame,
    comparison: pd.DataFrame,
    verdict: analysis.Verdict,
    slots: Sequence[ChartSlot],
    notes: Sequence[str],
    chart_paths: Sequence[Path],
) -> str:
    colors = charts.sweep_colors(list(comparison["label"]) if len(comparison) else [])
    statuses = []
    for run, label in zip(runs, labels):
        status = _status_html(run)
        if status:
            statuses.append(f"<h3>{html.escape(label)}</h3>{status}")
    facts = "".join(
        f"<h3>{html.escape(label)}</h3>{_facts_html(run)}<details><summary>Resolved experiment</summary><pre>{html.escape(run.experiment_text)}</pre></details>"
        for run, label in zip(runs, labels)
    )
    verdict_text = (
        "<div class=\"banner good\"><b>Passed</b>: every run met its SLO and recovery budget.</div>"
        if verdict.passed
        else "<div class=\"banner bad\"><b>Missed</b>:<ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in verdict.reasons) + "</ul></div>"
    )
    body = [
        f"<h1>Comparing {len(runs)} run{'s' if len(runs) != 1 else ''}</h1>",
        "<ul>"
        + "".join(
            f"<li><b>{html.escape(label)}</b>: {html.escape(run.experiment.name)}, folder <code>{html.escape(str(run.path))}</code>"
            f"{(' – ' + html.escape(run.experiment.description)) if run.experiment.description else ''}</li>"
            for run, label in zip(runs, labels)
        )
        + "</ul>",
        "\n".join(statuses),
        verdict_text,
        _warnings_html(notes),
        "<h2>Key numbers, side by side</h2>",
        _key_numbers_html(comparison, colors),
        _dip_notes_html(summary),
        _charts_html(slots, chart_paths),
        "<h2>The runs</h2>",
        facts,
        _files_html(chart_paths),
    ]
    return _page("chaoslab comparison", "\n".join(part for part in body if part))
