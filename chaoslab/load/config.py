"""What the engine tells the Locust process, as one JSON file named by an environment variable.

Locust owns its command line, and a user's locustfile may define its own options, so our
settings travel beside it: the engine writes a `LocustConfig` to a file and passes its
path in `CONFIG_ENV`; our locustfile and listener read it back. Pure standard library:
both processes import this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

CONFIG_ENV = "CHAOSLAB_LOAD_CONFIG"
"""Environment variable holding the path of the JSON config inside the Locust process."""


@dataclass(frozen=True)
class RequestConfig:
    """One weighted request of the built-in users."""

    method: str
    path: str
    name: str
    weight: int


@dataclass(frozen=True)
class StageConfig:
    """One step of `load.stages`: `users` reached at `spawn_rate` users/s, held `duration` s."""

    duration: float
    users: int
    spawn_rate: float


def stage_target(
    stages: tuple[StageConfig, ...], elapsed: float, before: tuple[int, float]
) -> tuple[int, float]:
    """(users, spawn rate) the stages ask for `elapsed` seconds after they start.

    `before` applies before the first stage (the warmup's `load.users`); after the
    last stage its users stay. Stage `i` covers [sum of earlier durations, + its own).
    """
    if elapsed < 0 or not stages:
        return before
    end = 0.0
    for stage in stages:
        end += stage.duration
        if elapsed < end:
            return stage.users, stage.spawn_rate
    return stages[-1].users, stages[-1].spawn_rate


@dataclass(frozen=True)
class IntegrityConfig:
    """The data-integrity users (`load.dataIntegrity`): which ordinal `target_url` reaches,
    the weights of a write and a read-back, and the folder each Locust process writes its
    `integrity-<pid>.csv` to (integrity.py)."""

    ordinal: int
    write_weight: int
    read_weight: int
    out_dir: str


@dataclass(frozen=True)
class LocustConfig:
    """Everything the Locust side needs; times in seconds.

    target_url: base URL of the service under test (no trailing slash).
    stream_dir: folder where every Locust process writes its own `<pid>.jsonl` stream.
    bucket: width of a load bucket (`measure.bucket`).
    timeout: `load.timeout`, the connect and read timeout of the built-in users; also the
      longest a request may stay in flight, which decides when a bucket is complete.
    seed: seeds the start jitter and wait times of the built-in users.
    wait_min, wait_max: `load.waitTime`, the pause between two requests of one user.
    requests: the built-in users' weighted requests (empty with a user locustfile).
    locust_csv_prefix: the `--csv` prefix Locust writes its own CSVs to; the listener
      writes their final state at quit (Locust only refreshes them every second).
    users, spawn_rate: `load.users` and `load.spawnRate` (the stages' level before they start).
    stages: `load.stages` (empty: no stages); stages_start: epoch s at which they start
      (the measurement start), so they line up with faults on the same clock.
    """

    target_url: str
    stream_dir: str
    bucket: float
    timeout: float
    seed: int
    wait_min: float
    wait_max: float
    requests: tuple[RequestConfig, ...]
    locust_csv_prefix: str = ""
    users: int = 1
    spawn_rate: float = 1.0
    stages: tuple[StageConfig, ...] = ()
    stages_start: float = 0.0
    integrity: IntegrityConfig | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> LocustConfig:
        data = json.loads(text)
        data["requests"] = tuple(RequestConfig(**r) for r in data["requests"])
        data["stages"] = tuple(StageConfig(**s) for s in data.get("stages", ()))
        if data.get("integrity") is not None:
            data["integrity"] = IntegrityConfig(**data["integrity"])
        return cls(**data)

    def write(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> LocustConfig:
        """Read the config the engine named in `CONFIG_ENV` (inside the Locust process)."""
        path = environ.get(CONFIG_ENV)
        if not path:
            raise RuntimeError(
                f"{CONFIG_ENV} is not set: this file is loaded by chaoslab's load runner, "
                "which passes its settings in that variable; run it through `chaoslab run`"
            )
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
