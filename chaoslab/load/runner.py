"""The engine's handle on the load: start Locust, turn its streams into load.csv, stop it.

Locust must import first in its process (gevent monkey-patching), so it runs as a child
process (`python -m locust --headless`) that loads our listener beside the users; the
listener streams buckets as JSON lines (stream.py). `LoadRun` tails those streams, merges
the buckets of all Locust processes, appends complete rows to `load.csv` as they arrive,
and answers a live view for the status line. Whatever happens, Locust does not outlive
it: its own process group, a parent-death signal, and a stop that escalates from SIGTERM
(Locust writes its CSVs, the listener flushes every bucket) to SIGKILL of the group.

This module must not import locust or gevent (directly or through chaoslab.load.*).

Files in `out_dir` (the trial folder):
  load.csv                 merged buckets (docs/results.md), appended row by row
  locust_stats.csv, locust_failures.csv, locust_stats_history.csv   Locust's own (--csv)
  locust.log               Locust's stdout and stderr (warnings and errors, final summary)
  locust_stream/           config.json we pass to Locust, one <pid>.jsonl per Locust process
"""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, NoReturn

from chaoslab.cluster.network import HOST_NETWORK, ClientNetwork
from chaoslab.errors import LoadError
from chaoslab.load.config import CONFIG_ENV, IntegrityConfig, LocustConfig, RequestConfig, StageConfig
from chaoslab.load.integrity import INTEGRITY_CSV, merge_parts
from chaoslab.load.lifetime import ParentDeathSignal
from chaoslab.load.stream import LOAD_COLUMNS, Bucket, LiveStats, StreamMerger
from chaoslab.spec import LoadSpec

LOAD_CSV = "load.csv"
LOCUST_LOG = "locust.log"
STREAM_DIR = "locust_stream"
CSV_PREFIX = "locust"
"""`--csv` prefix: Locust writes locust_stats.csv, locust_failures.csv, locust_stats_history.csv."""

LIVE_WINDOW_S = 2.0
"""How far back `LoadRun.live()` looks for requests/s and error rate."""

# Importing Locust and forking workers takes 1-3 s on an idle machine; a busy 2-core
# machine can be several times slower.
DEFAULT_START_TIMEOUT_S = 60.0
# Locust writes its CSVs and the listener its last buckets within a second of SIGTERM.
DEFAULT_STOP_TIMEOUT_S = 15.0
# With --processes the master waits up to 3 s for its workers to exit (locust.main), so
# leftovers of the process group get that long plus slack before SIGKILL.
_GROUP_EXIT_GRACE_S = 5.0
# How long a dead worker's master gets to show that it died first (see _check_alive).
_MASTER_EXIT_GRACE_S = 0.5
# Polling step while waiting for Locust to start or stop: short next to both.
_WAIT_STEP_S = 0.05
# Enough of locust.log for a traceback from a user's locustfile.
_LOG_TAIL_LINES = 40

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
_LISTENER = Path(__file__).with_name("listener.py")
_BUILTIN_LOCUSTFILE = Path(__file__).with_name("locustfile.py")
_STAGES_SHAPE = Path(__file__).with_name("stages.py")
_INTEGRITY_LOCUSTFILE = Path(__file__).with_name("kvusers.py")

_log = logging.getLogger(__name__)


class LoadRun:
    """One Locust run for one trial: start it, read buckets while it runs, stop it.

    load: the experiment's `load:` section. target_url: the service URL, e.g.
    `http://127.0.0.1:40123`. bucket: `measure.bucket` in seconds. out_dir: the trial
    folder. seed: seeds user jitter and wait times. experiment_dir: the folder of the
    experiment file, which `load.locustfile` is relative to. stages_start: the epoch
    second `load.stages` start at (the measurement start); before it the load holds
    `load.users`.

    Call `start()`, then `poll()` regularly (it returns rows once, in time order, and has
    already appended them to load.csv), `live()` for a status line, and `stop()` at the
    end (or `close()` from a signal path). Every method raises `LoadError` when Locust
    fails; rows read up to then are in load.csv. Start it from a long-lived thread: the
    parent-death signal fires when the starting thread exits.
    """

    def __init__(
        self,
        load: LoadSpec,
        target_url: str,
        bucket: float,
        out_dir: Path,
        seed: int,
        experiment_dir: Path,
        *,
        start_timeout: float = DEFAULT_START_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
        python: str = sys.executable,
        stages_start: float | None = None,
        network: ClientNetwork = HOST_NETWORK,
    ) -> None:
        self.load = load
        self.network = network
        self.target_url = target_url.rstrip("/")
        self.bucket = bucket
        self.out_dir = Path(out_dir)
        self.seed = seed
        self.experiment_dir = Path(experiment_dir)
        self.start_timeout = start_timeout
        self._clock = clock
        self._python = python
        self.stages_start = stages_start
        self._merger = StreamMerger(bucket, expected_streams=load.processes)
        self._process: subprocess.Popen[bytes] | None = None
        self._state = "new"  # new -> running -> stopping -> stopped | failed
        self._log_file: IO[bytes] | None = None
        self._csv_file: IO[str] | None = None
        self._csv: Any = None  # a csv writer over _csv_file
        self._streams: dict[str, IO[bytes]] = {}
        self._partial: dict[str, bytes] = {}
        self._unreturned: list[Bucket] = []

    # --- paths ---------------------------------------------------------------------

    @property
    def load_csv(self) -> Path:
        return self.out_dir / LOAD_CSV

    @property
    def log_path(self) -> Path:
        return self.out_dir / LOCUST_LOG

    @property
    def stream_dir(self) -> Path:
        return self.out_dir / STREAM_DIR

    @property
    def _csv_prefix(self) -> str:
        return str((self.out_dir / CSV_PREFIX).resolve())

    @property
    def pid(self) -> int | None:
        """The Locust (master) process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def late_requests(self) -> int:
        """Requests that completed after their bucket's row was written (not in load.csv)."""
        return self._merger.late_requests

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Start Locust and return once every Locust process has started the test.

        Raises LoadError if the user locustfile is missing, or Locust exits or does not
        start within `start_timeout` (the message carries the end of locust.log).
        """
        if self._state != "new":
            raise RuntimeError(f"LoadRun.start() called twice (state {self._state})")
        users_file = self._users_file()
        self.stream_dir.mkdir(parents=True, exist_ok=True)
        for stale in [*self.stream_dir.glob("*.jsonl"), *self.stream_dir.glob("integrity-*.csv")]:
            stale.unlink()
        config_path = self.stream_dir / "config.json"
        self._config().write(config_path)
        self._open_csv()
        self._log_file = self.log_path.open("wb")
        try:
            self._process = subprocess.Popen(
                self._command(users_file),
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                cwd=self.experiment_dir if self.load.locustfile else self.out_dir,
                env=self._environment(config_path),
                start_new_session=True,  # own process group: stop() can signal all of it
                preexec_fn=ParentDeathSignal(signal.SIGKILL, before=self.network.preexec()),
            )
        except OSError as exc:
            self._close_files()
            self._state = "failed"
            raise LoadError(f"could not start Locust with {self._python}: {exc}") from exc
        self._state = "running"
        try:
            self._wait_started()
        except BaseException:
            self._abort()
            raise

    def poll(self) -> list[Bucket]:
        """New complete rows (merged across Locust processes), also appended to load.csv.

        Raises LoadError if Locust (or one of its worker processes) died; the rows read
        until then are in load.csv.
        """
        if self._state != "running":
            rows, self._unreturned = self._unreturned, []
            return rows
        self._ingest()
        self._unreturned.extend(self._release(final=False))
        self._check_alive()  # on LoadError the rows stay for stop() or the next poll()
        rows, self._unreturned = self._unreturned, []
        return rows

    def live(self) -> LiveStats:
        """Requests/s, error rate and users over the last ~2 s (by completion time)."""
        if self._state == "running":
            self._ingest()
        return self._merger.live(self._clock(), LIVE_WINDOW_S)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> list[Bucket]:
        """Stop Locust and return the last rows (also in load.csv). Idempotent.

        SIGTERM lets Locust write its CSVs and our listener flush every bucket (buckets
        of requests cut off by the stop are written as they are); after `timeout` the
        whole process group is killed. Returns the rows no call has returned yet ([] on a
        second call).
        """
        if self._state in ("new", "stopped", "failed"):
            self._state = "stopped" if self._state == "new" else self._state
            rows, self._unreturned = self._unreturned, []
            return rows
        if self._state == "stopping":
            return []
        self._state = "stopping"
        try:
            self._terminate(timeout)
        finally:
            self._ingest()
            rows = self._unreturned + self._release(final=True)
            self._unreturned = []
            self._close_files()
            merge_parts(self.stream_dir, self.out_dir / INTEGRITY_CSV)
            self._state = "stopped"
        if self._merger.late_requests:
            _log.warning(
                "%d requests completed more than load.timeout after their bucket and are "
                "missing from load.csv (Locust's own CSVs count them)",
                self._merger.late_requests,
            )
        return rows

    def close(self, timeout: float = 5.0) -> None:
        """Stop and clean up; safe from a signal handler and to call again.

        Called while a stop is in progress (a second Ctrl-C), it kills Locust at once.
        The rows it releases stay in load.csv (and come out of the next `poll()`).
        """
        if self._state == "stopping":
            self.kill()
            return
        if self._state == "running":
            self._unreturned.extend(self.stop(timeout))
        elif self._state == "new":
            self._state = "stopped"

    def kill(self) -> None:
        """SIGKILL every process of the Locust process group, now."""
        if self._process is not None:
            _signal_group(self._process.pid, signal.SIGKILL)

    # --- starting ------------------------------------------------------------------

    def _users_file(self) -> Path:
        if self.load.data_integrity is not None:
            return _INTEGRITY_LOCUSTFILE
        if not self.load.locustfile:
            return _BUILTIN_LOCUSTFILE
        path = Path(self.load.locustfile)
        if not path.is_absolute():
            path = self.experiment_dir / path
        if not path.is_file():
            raise LoadError(
                f"load.locustfile: {path} does not exist; the path is relative to the "
                f"experiment file's folder ({self.experiment_dir}). Fix the path, or "
                "describe the requests with load.requests instead."
            )
        path = path.resolve()
        if "," in str(path):
            raise LoadError(
                f"load.locustfile: {path} has a comma in its path, and Locust reads `-f` as a "
                "comma-separated list of files; move or rename it."
            )
        return path

    def _config(self) -> LocustConfig:
        requests = tuple(
            RequestConfig(method=r.method, path=r.path, name=r.name or r.path, weight=r.weight)
            for r in self.load.effective_requests()
        )
        return LocustConfig(
            target_url=self.target_url,
            stream_dir=str(self.stream_dir.resolve()),
            bucket=self.bucket,
            timeout=self.load.timeout,
            seed=self.seed,
            wait_min=self.load.wait_time.min,
            wait_max=self.load.wait_time.max,
            requests=() if self.load.locustfile else requests,
            locust_csv_prefix=self._csv_prefix,
            users=self.load.users,
            spawn_rate=self.load.spawn_rate,
            stages=tuple(
                StageConfig(duration=s.duration, users=s.users, spawn_rate=s.spawn_rate or self.load.spawn_rate)
                for s in self.load.stages or ()
            ),
            stages_start=self.stages_start if self.stages_start is not None else self._clock(),
            integrity=self._integrity_config(),
        )

    def _integrity_config(self) -> IntegrityConfig | None:
        spec = self.load.data_integrity
        if spec is None:
            return None
        return IntegrityConfig(
            ordinal=spec.ordinal,
            write_weight=spec.write_weight,
            read_weight=spec.read_weight,
            out_dir=str(self.stream_dir.resolve()),
        )

    def _command(self, users_file: Path) -> list[str]:
        command = [
            self._python,
            "-m",
            "locust",
            "-f",
            f"{users_file},{_LISTENER}" + (f",{_STAGES_SHAPE}" if self.load.stages else ""),
            "--headless",
            "--users",
            str(self.load.users),
            "--spawn-rate",
            f"{self.load.spawn_rate:g}",
            "--host",
            self.target_url,
            "--csv",
            self._csv_prefix,
            "--only-summary",  # no stats table every 2 s in locust.log
            "--loglevel",
            "WARNING",
        ]
        if self.load.processes > 1:
            port = _free_loopback_port()
            command += [
                "--processes",
                str(self.load.processes),
                # Master and workers talk over loopback only; nothing listens elsewhere.
                "--master-bind-host",
                "127.0.0.1",
                "--master-bind-port",
                str(port),
                "--master-host",
                "127.0.0.1",
                "--master-port",
                str(port),
            ]
        return command

    def _environment(self, config_path: Path) -> dict[str, str]:
        # LOCUST_* variables would silently change the run (run time, users, bind host).
        environment = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
        environment[CONFIG_ENV] = str(config_path.resolve())
        paths = [str(_PACKAGE_ROOT)] + [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p]
        environment["PYTHONPATH"] = os.pathsep.join(paths)
        return environment

    def _open_csv(self) -> None:
        new = not self.load_csv.exists() or self.load_csv.stat().st_size == 0
        self._csv_file = self.load_csv.open("a", encoding="utf-8", newline="")
        self._csv = csv.writer(self._csv_file)
        if new:
            self._csv.writerow(LOAD_COLUMNS)
            self._csv_file.flush()

    def _wait_started(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        while self._merger.started_streams < self.load.processes:
            if self._state != "running":
                return  # close() from a signal handler stopped it; the caller handles that
            self._ingest()
            code = self._process.poll()
            if code is not None:
                raise LoadError(self._failure(f"Locust exited with code {code} before the load started"))
            if time.monotonic() > deadline:
                raise LoadError(
                    self._failure(f"Locust did not start the load within {self.start_timeout:g}s")
                )
            time.sleep(_WAIT_STEP_S)

    # --- reading -------------------------------------------------------------------

    def _ingest(self) -> None:
        """Read every complete new line of every stream into the merger."""
        for path in sorted(self.stream_dir.glob("*.jsonl")):
            name = path.name
            handle = self._streams.get(name)
            if handle is None:
                handle = self._streams[name] = path.open("rb")
            data = self._partial.pop(name, b"") + handle.read()
            if not data:
                continue
            complete, _, rest = data.rpartition(b"\n")
            if rest:
                self._partial[name] = rest
            for line in complete.split(b"\n") if complete else []:
                try:
                    self._merger.feed(name, _json_object(line))
                except (ValueError, KeyError, TypeError) as exc:
                    raise LoadError(
                        f"unreadable load stream {path}: {exc} in line {line[:200]!r}"
                    ) from exc

    def _release(self, final: bool) -> list[Bucket]:
        rows = self._merger.take_ready(final=final)
        if rows and self._csv is not None and self._csv_file is not None:
            for row in rows:
                self._csv.writerow(row.csv_cells())
            self._csv_file.flush()
        return rows

    def _check_alive(self) -> None:
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            self._fail(f"Locust exited with code {code} while the load was running")
        for stream, pid in self._merger.open_streams().items():
            if pid is not None and pid != self._process.pid and not _process_alive(pid):
                # Workers die with their master (parent-death signal), possibly before the
                # master's own exit can be collected: then the master's exit is the cause.
                try:
                    code = self._process.wait(_MASTER_EXIT_GRACE_S)
                except subprocess.TimeoutExpired:
                    self._fail(f"Locust worker process {pid} (stream {stream}) died while the load was running")
                self._fail(f"Locust exited with code {code} while the load was running")

    def _fail(self, what: str) -> NoReturn:
        """Stop everything, keep what was read, raise LoadError."""
        self._unreturned.extend(self._abort())
        raise LoadError(self._failure(what))

    def _failure(self, what: str) -> str:
        return f"{what}; last lines of {self.log_path}:\n{_tail(self.log_path, _LOG_TAIL_LINES)}"

    # --- stopping ------------------------------------------------------------------

    def _terminate(self, timeout: float) -> None:
        assert self._process is not None
        process = self._process
        if process.poll() is None:
            try:
                process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass  # exited between poll() and the signal
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _log.warning("Locust did not stop within %gs of SIGTERM; killing it", timeout)
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
        # Workers may outlive the master for a moment; never leave one behind.
        deadline = time.monotonic() + _GROUP_EXIT_GRACE_S
        while _group_members(process.pid) and time.monotonic() < deadline:
            time.sleep(_WAIT_STEP_S)
        if _group_members(process.pid):
            _signal_group(process.pid, signal.SIGKILL)

    def _abort(self) -> list[Bucket]:
        """Kill the Locust process group at once, keep the rows read so far."""
        self._state = "stopping"
        try:
            if self._process is not None:
                _signal_group(self._process.pid, signal.SIGKILL)
                self._process.wait()
            self._ingest()
            return self._release(final=True)
        finally:
            self._close_files()
            self._state = "failed"

    def _close_files(self) -> None:
        for handle in self._streams.values():
            handle.close()
        self._streams.clear()
        if self._csv_file is not None:
            self._csv_file.close()
            self._csv_file = None
            self._csv = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _json_object(line: bytes) -> dict[str, Any]:
    value = json.loads(line)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass  # the group is already empty


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group `pgid`, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _proc_stat(int(entry.name))
        if fields is not None and fields[2] != "Z" and int(fields[4]) == pgid:
            members.append(int(entry.name))
    return members


def _process_alive(pid: int) -> bool:
    fields = _proc_stat(pid)
    return fields is not None and fields[2] != "Z"


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat (index 2: state, 4: process group), None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 1) is in parentheses and may contain spaces.
    head, _, rest = text.rpartition(")")
    return [head.split(" (", 1)[0], head.split(" (", 1)[-1]] + rest.split()


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"
