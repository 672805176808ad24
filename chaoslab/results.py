"""The results folder: its layout, crash-safe writes, and reading a run back.

A run folder is the only thing `chaoslab report` and `chaoslab compare` need, so it must
survive a crash or Ctrl-C at any moment in a readable state: JSON files are replaced
atomically (write to a temporary file in the same folder, fsync, rename) and CSV tables
are appended line by line and flushed. See docs/results.md for the contract.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
import yaml

from chaoslab.cluster.base import AUTOSCALER_COLUMNS, EVENT_COLUMNS
from chaoslab.errors import ResultsError, SpecError
from chaoslab.load.failures import FAILURE_CLASSES
from chaoslab.load.integrity import INTEGRITY_COLUMNS, INTEGRITY_CSV, PART_PATTERN, read_parts
from chaoslab.load.stream import LOAD_COLUMNS
from chaoslab.spec import Experiment

FORMAT_VERSION = 1

FAULT_COLUMNS = (
    "fault_id",
    "action",
    "scheduled_s",
    "ts",
    "targets",
    "ready_before",
    "ready_after",
    "detail",
)
PROBE_COLUMNS = ("ts", "ok", "latency_ms", "error")


def run_folder_name(experiment_name: str, started: datetime) -> str:
    """`<name>-<UTC timestamp>`, e.g. web-pod-delete-20261127T111500Z."""
    return f"{experiment_name}-{started.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}"


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` so a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        # mkstemp creates 0600; results are meant to be shared like any file the user writes.
        os.fchmod(fd, 0o666 & ~_current_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_write_frame(path: Path, frame: pd.DataFrame) -> None:
    atomic_write_text(path, frame.to_csv(index=False))


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class CsvAppender:
    """An append-only CSV table: header once, one flushed line per row.

    Used for load buckets, events and faults, which arrive while a trial runs; a crash
    loses at most the row being written.
    """

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = path
        self.columns = tuple(columns)
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists() or path.stat().st_size == 0
        self._handle: TextIO | None = path.open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._handle, fieldnames=self.columns, extrasaction="ignore")
        if fresh:
            self._writer.writeheader()
            self._handle.flush()

    def write(self, row: Mapping[str, Any]) -> None:
        self.write_many([row])

    def write_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        if self._handle is None:
            raise ValueError(f"{self.path} is closed")
        wrote = False
        for row in rows:
            self._writer.writerow({k: _csv_cell(row.get(k)) for k in self.columns})
            wrote = True
        if wrote:
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> CsvAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN stays an empty cell
        return ""
    return value


# --- reading a run back --------------------------------------------------------------


@dataclass(frozen=True)
class TrialInfo:
    """What trial.json says about one trial."""

    status: str
    measure_start: float | None
    measure_end: float | None
    desired_replicas: int | None
    phases: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class TrialData:
    """One trial's tables, as read from its folder."""

    id: str
    point: int
    trial: int
    seed: int
    params: Mapping[str, Any]
    info: TrialInfo
    load: pd.DataFrame
    events: pd.DataFrame
    faults: pd.DataFrame
    probe: pd.DataFrame | None
    path: Path
    # autoscaler.csv (HPA evaluations); empty, with its columns, when the trial had no HPA.
    autoscaler: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(AUTOSCALER_COLUMNS)))
    # integrity.csv of the data-integrity users (load.dataIntegrity); None without them.
    integrity: pd.DataFrame | None = None


@dataclass(frozen=True)
class RunData:
    """A whole run folder: the journal, the resolved experiment and every trial."""

    path: Path
    journal: Mapping[str, Any]
    experiment: Experiment
    experiment_text: str
    trials: tuple[TrialData, ...]

    @property
    def sweep_paths(self) -> tuple[str, ...]:
        return tuple(self.experiment.sweep.keys())

    @property
    def status(self) -> str:
        return str(self.journal.get("status", "unknown"))


def _read_csv(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    """A table, or an empty frame with the contract's columns when the file is absent."""
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    try:
        frame = pd.read_csv(path, keep_default_na=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: unreadable table ({exc})") from exc
    for column in columns:
        if column not in frame.columns:
            frame[column] = pd.NA
    return frame


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ResultsError(f"{path}: missing; is {path.parent} a chaoslab results folder?") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object")
    return data


def read_trial(path: Path) -> TrialData:
    params = _read_json(path / "params.json")
    info_path = path / "trial.json"
    info = _read_json(info_path) if info_path.exists() else {"status": "unknown"}
    probe_path = path / "probe.csv"
    load = _read_csv(path / "load.csv", LOAD_COLUMNS)
    events = _read_csv(path / "events.csv", EVENT_COLUMNS)
    for text_column in ("kind", "object", "name", "node", "reason", "detail"):
        events[text_column] = events[text_column].fillna("").astype(str)
    faults = _read_csv(path / "faults.csv", FAULT_COLUMNS)
    faults["targets"] = faults["targets"].fillna("").astype(str)
    return TrialData(
        id=str(params.get("id", path.name)),
        point=int(params.get("point", 0)),
        trial=int(params.get("trial", 0)),
        seed=int(params.get("seed", 0)),
        params=dict(params.get("params", {})),
        info=TrialInfo(
            status=str(info.get("status", "unknown")),
            measure_start=info.get("measure_start"),
            measure_end=info.get("measure_end"),
            desired_replicas=info.get("desired_replicas"),
            phases=dict(info.get("phases", {})),
            error=info.get("error"),
        ),
        load=load,
        events=events,
        faults=faults,
        probe=_read_csv(probe_path, PROBE_COLUMNS) if probe_path.exists() else None,
        path=path,
        autoscaler=_read_csv(path / "autoscaler.csv", AUTOSCALER_COLUMNS),
        integrity=read_integrity(path),
    )


def read_integrity(path: Path) -> pd.DataFrame | None:
    """integrity.csv; or, when the engine died before merging it, the Locust processes'
    parts in locust_stream/ (nothing measured is lost); None without data-integrity users."""
    if (path / INTEGRITY_CSV).exists():
        return _read_csv(path / INTEGRITY_CSV, INTEGRITY_COLUMNS)
    stream = path / "locust_stream"
    if stream.is_dir() and any(stream.glob(PART_PATTERN)):
        return pd.DataFrame(read_parts(stream), columns=list(INTEGRITY_COLUMNS))
    return None


def read_run(path: Path) -> RunData:
    """Read a results folder written by `chaoslab run` (raises ResultsError)."""
    if not path.is_dir():
        raise ResultsError(f"{path}: not a folder; expected a results folder such as results/<name>-<timestamp>/")
    journal = _read_json(path / "run.json")
    experiment_path = path / "experiment.yaml"
    try:
        text = experiment_path.read_text(encoding="utf-8")
        experiment = Experiment.model_validate(yaml.safe_load(text))
    except FileNotFoundError as exc:
        raise ResultsError(f"{experiment_path}: missing") from exc
    except (yaml.YAMLError, ValueError, SpecError) as exc:
        raise ResultsError(f"{experiment_path}: not a valid resolved experiment ({exc})") from exc
    trials_dir = path / "trials"
    trial_dirs = sorted(p for p in trials_dir.iterdir() if p.is_dir()) if trials_dir.is_dir() else []
    trials = tuple(read_trial(p) for p in trial_dirs if (p / "params.json").exists())
    return RunData(path=path, journal=journal, experiment=experiment, experiment_text=text, trials=trials)
