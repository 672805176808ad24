"""The report builds from a results folder alone: no cluster, no network, partial runs too.

One build exports PNG and SVG through kaleido (a single Chromium session, a few seconds);
every other build here skips images.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from chaoslab import analysis
from chaoslab.errors import ResultsError
from chaoslab.results import read_run
from chaoslab.report import CHART_FILE_STEMS, ReportResult, ReportWarning, build_comparison, build_report, find_browser

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "runs" / "replicas-pod-delete-20261127T120000Z"
SUMMARY_CONTRACT = [
    "trial", "point", "trial_index", "workload.replicas", "fault_id", "action", "fault_ts", "fault_s", "availability",
    "fault_window_availability", "time_to_first_error_s", "error_window_s", "time_to_recover_s", "capacity_recovered_s",
    "requests", "failed_requests", "refused", "reset", "timeout", "http_5xx", "other", "p50_ms", "p95_ms", "p99_ms",
    "p99_ms_during", "throughput_dip", "status",
]  # fmt: skip
COMPARISON_CONTRACT = [
    "point", "label", "workload.replicas", "trials", "never_recovered",
    *(f"{m}_{s}" for m in ("availability", "time_to_recover_s", "capacity_recovered_s") for s in ("median", "min", "max", "ci_low", "ci_high")),
]  # fmt: skip


def copy_fixture(target: Path) -> Path:
    run_dir = target / FIXTURE.name
    shutil.copytree(FIXTURE, run_dir)
    return run_dir


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    if find_browser() is None:
        pytest.skip("no Chromium for kaleido: apt-get install -y chromium fonts-dejavu-core fonts-liberation")
    return build_report(copy_fixture(tmp_path_factory.mktemp("report")), images=True)


def test_report_html_is_self_contained(built: ReportResult) -> None:
    page = built.html.read_text(encoding="utf-8")
    assert page.count(get_plotlyjs()[:2000]) == 1  # plotly.js inlined, exactly once
    assert not re.search(r"<script[^>]*\ssrc\s*=", page, re.IGNORECASE)
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']https?:", page, re.IGNORECASE)
    for stem in CHART_FILE_STEMS:
        assert f'id="chart-{stem}"' in page
    assert "Deleting 1 pod: availability and throughput with 1, 3 replicas" in page
    assert "<b>Missed</b>" in page and "p01-t1: availability" in page
    assert "recoveryBudget: 10.0" in page  # the resolved experiment is shown


def test_tables_have_the_contract_columns(built: ReportResult) -> None:
    run_dir = built.html.parent
    summary = pd.read_csv(run_dir / "summary.csv")
    comparison = pd.read_csv(run_dir / "comparison.csv")
    assert [c for c in SUMMARY_CONTRACT if c not in summary.columns] == []
    assert [c for c in COMPARISON_CONTRACT if c not in comparison.columns] == []
    assert len(summary) == 4 and list(comparison["label"]) == ["replicas=1", "replicas=3"]
    # The story the fixture tells: 1 replica misses the SLO, 3 replicas keep it.
    assert comparison["availability_median"].iloc[0] < 0.99 < comparison["availability_median"].iloc[1]
    assert not built.verdict.passed
    assert {r.split(":")[0] for r in built.verdict.reasons} == {"p01-t1", "p01-t2"}


def test_images_are_written_for_every_chart(built: ReportResult) -> None:
    names = sorted(p.name for p in built.charts)
    assert names == sorted(f"{stem}.{fmt}" for stem in CHART_FILE_STEMS for fmt in ("png", "svg"))
    assert all(p.stat().st_size > 5000 for p in built.charts)
    assert not [p for p in (built.html.parent / "charts").iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_svg_carries_the_title_as_text(built: ReportResult) -> None:
    svg = built.html.parent / "charts" / "1-availability.svg"
    texts = ["".join(element.itertext()) for element in ET.parse(svg).iter() if element.tag.endswith("}text") or element.tag == "text"]
    assert "Deleting 1 pod: availability and throughput with 1, 3 replicas" in texts
    assert any("success ratio (%)" in t for t in texts)


def test_png_has_rendered_text_in_the_title_band(built: ReportResult) -> None:
    image_module = pytest.importorskip("PIL.Image")
    with image_module.open(built.html.parent / "charts" / "1-availability.png") as image:
        assert image.size == (1600, 900)
        gray = image.convert("L")
        # The title is dark text in the top band; an empty frame (missing fonts) has none.
        title_band = gray.crop((0, 0, 1600, 80))
        dark_in_title = sum(title_band.histogram()[:100])
        blank_band = gray.crop((0, 880, 1600, 900))  # below the x-axis title: background only
        dark_in_blank = sum(blank_band.histogram()[:100])
    assert dark_in_title > 2000
    assert dark_in_blank == 0


def test_missing_chromium_still_writes_html_and_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))
    with pytest.warns(ReportWarning, match="apt-get install -y chromium fonts-dejavu-core fonts-liberation"):
        result = build_report(copy_fixture(tmp_path), images=True)
    assert result.html.exists() and result.charts == ()
    assert "PNG/SVG charts skipped" in result.warnings[0]
    assert "PNG/SVG charts skipped" in result.html.read_text(encoding="utf-8")


def test_aborted_partial_run_still_builds(tmp_path: Path) -> None:
    run_dir = copy_fixture(tmp_path)
    journal = json.loads((run_dir / "run.json").read_text())
    journal.update(status="aborted", trials_done=["p01-t1", "p01-t2", "p02-t1"], error="interrupted by SIGINT")
    (run_dir / "run.json").write_text(json.dumps(journal))
    # The last trial was cut short while measuring: no measure_end, half its load, no trial.json phase end.
    trial_dir = run_dir / "trials" / "p02-t2"
    info = json.loads((trial_dir / "trial.json").read_text())
    info.update(status="aborted", measure_end=None)
    (trial_dir / "trial.json").write_text(json.dumps(info))
    load = pd.read_csv(trial_dir / "load.csv")
    load.iloc[: len(load) // 2].to_csv(trial_dir / "load.csv", index=False)
    (trial_dir / "events.csv").unlink()
    # A trial that never reached the measurement.
    shutil.copytree(run_dir / "trials" / "p02-t1", run_dir / "trials" / "p02-t3")
    (run_dir / "trials" / "p02-t3" / "trial.json").write_text(json.dumps({"id": "p02-t3", "status": "failed", "measure_start": None}))
    (run_dir / "trials" / "p02-t3" / "load.csv").unlink()
    params = json.loads((run_dir / "trials" / "p02-t3" / "params.json").read_text())
    (run_dir / "trials" / "p02-t3" / "params.json").write_text(json.dumps({**params, "id": "p02-t3", "trial": 3}))

    result = build_report(run_dir, images=False)
    page = result.html.read_text(encoding="utf-8")
    assert "This run is ABORTED" in page and "interrupted by SIGINT" in page
    assert "p02-t2 (aborted)" in page and "p02-t3 (failed)" in page
    assert set(result.summary["trial"]) == {"p01-t1", "p01-t2", "p02-t1", "p02-t2", "p02-t3"}
    cut = result.summary[result.summary["trial"] == "p02-t2"].iloc[0]
    assert cut["availability"] > 0.99 and pd.isna(cut["capacity_recovered_s"])  # measured until the cut, no events
    assert pd.isna(result.summary[result.summary["trial"] == "p02-t3"]["availability"]).all()
    assert result.charts == () and (run_dir / "summary.csv").exists()


def test_run_without_measurements_omits_charts_with_a_note(tmp_path: Path) -> None:
    run_dir = copy_fixture(tmp_path)
    for trial_dir in (run_dir / "trials").iterdir():
        (trial_dir / "load.csv").unlink()
    result = build_report(run_dir, images=False)
    page = result.html.read_text(encoding="utf-8")
    assert page.count("Chart left out: no trial has load data") == 2
    assert not result.verdict.passed


def test_not_a_results_folder_is_a_results_error_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match=re.escape(str(tmp_path / "missing"))):
        build_report(tmp_path / "missing", images=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="run.json"):
        build_report(tmp_path / "empty", images=False)


def test_compare_puts_runs_side_by_side(tmp_path: Path) -> None:
    first = copy_fixture(tmp_path)
    second = tmp_path / "replicas-pod-delete-20261128T090000Z"  # the same experiment, run again
    shutil.copytree(FIXTURE, second)
    result = build_comparison([first, second], tmp_path / "compare", images=False)
    assert result.html == tmp_path / "compare" / "report.html"
    runs = ["replicas-pod-delete [20261127T120000Z]", "replicas-pod-delete [20261128T090000Z]"]
    assert list(result.comparison["label"]) == [f"{run} · replicas={n}" for run in runs for n in (1, 3)]
    assert list(result.comparison["run"]) == [runs[0], runs[0], runs[1], runs[1]]
    assert set(result.summary["run"]) == set(runs) and len(result.summary) == 8
    assert (tmp_path / "compare" / "summary.csv").exists() and (tmp_path / "compare" / "comparison.csv").exists()
    page = result.html.read_text(encoding="utf-8")
    assert "Comparing 2 runs" in page and "across runs" in page and str(second) in page
    assert not result.verdict.passed and all(r.startswith(tuple(runs)) for r in result.verdict.reasons)
    # The same numbers as each run's own analysis.
    own = analysis.comparison_table(analysis.summary_table(read_run(first)), ["workload.replicas"], np.random.default_rng(0))
    assert list(result.comparison["availability_median"][:2]) == pytest.approx(list(own["availability_median"]))


def test_compare_labels_runs_by_experiment_name_when_distinct(tmp_path: Path) -> None:
    first = copy_fixture(tmp_path / "a")
    second = copy_fixture(tmp_path / "b")
    text = (second / "experiment.yaml").read_text().replace("name: replicas-pod-delete", "name: replicas-pod-delete-tuned")
    (second / "experiment.yaml").write_text(text)
    result = build_comparison([first, second], tmp_path / "compare", images=False)
    assert list(dict.fromkeys(result.comparison["run"])) == ["replicas-pod-delete", "replicas-pod-delete-tuned"]
