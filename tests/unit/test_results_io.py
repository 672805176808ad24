"""The results folder survives crashes: atomic JSON, append-only CSV, readable partial runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaoslab.errors import ResultsError
from chaoslab.results import LOAD_COLUMNS, CsvAppender, atomic_write_json, read_run, read_trial


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    atomic_write_json(target, {"status": "running"})
    atomic_write_json(target, {"status": "completed"})
    assert json.loads(target.read_text()) == {"status": "completed"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_csv_appender_is_readable_after_every_row(tmp_path: Path) -> None:
    path = tmp_path / "load.csv"
    table = CsvAppender(path, LOAD_COLUMNS)
    table.write({"ts": 1.0, "requests": 5, "failures": 0, "p50_ms": float("nan")})
    # Readable while still open: rows are flushed as they are written.
    assert path.read_text().splitlines() == [",".join(LOAD_COLUMNS), "1.0,,5,0,,,,,,,,,"]
    table.close()
    # Re-opening appends without a second header.
    with CsvAppender(path, LOAD_COLUMNS) as again:
        again.write({"ts": 1.1, "requests": 1, "failures": 1})
    assert len(path.read_text().splitlines()) == 3


def test_partial_trial_reads_with_contract_columns(tmp_path: Path) -> None:
    trial = tmp_path / "p01-t1"
    trial.mkdir()
    atomic_write_json(trial / "params.json", {"id": "p01-t1", "point": 1, "trial": 1, "seed": 9, "params": {"workload.replicas": 2}})
    data = read_trial(trial)
    assert data.params == {"workload.replicas": 2}
    assert data.info.status == "unknown"
    assert list(data.load.columns) == list(LOAD_COLUMNS)
    assert data.load.empty and data.events.empty and data.probe is None


def test_read_run_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="run.json: missing"):
        read_run(tmp_path)
    with pytest.raises(ResultsError, match="not a folder"):
        read_run(tmp_path / "nope")
