"""`load.stages` as a Locust LoadTestShape: users that change over the measurement.

Loaded by path beside the users and the listener (`locust -f <users>,listener.py,stages.py`)
only when the experiment has stages, so a person's own locustfile with its own
LoadTestShape is left alone (the loader refuses both at once). The shape reads the
stages and the epoch second they start at (the measurement start) from the JSON config
(config.py), so stage times share the clock of faults and load buckets. Before the
stages, during the warmup, it holds `load.users`; after the last stage, its users stay
until the engine stops Locust (the shape never ends the test itself).

Locust calls `tick()` about once a second; a change of target takes effect then.
"""

from __future__ import annotations

import locust  # noqa: F401  (first: gevent must monkey-patch before anything else loads)

import os
import time

from locust import LoadTestShape

from chaoslab.load.config import LocustConfig, stage_target

CONFIG = LocustConfig.from_environment(os.environ)


class ChaoslabStages(LoadTestShape):
    """The experiment's `load.stages`, on the wall clock of the measurement."""

    def tick(self) -> tuple[int, float]:
        return stage_target(CONFIG.stages, time.time() - CONFIG.stages_start, (CONFIG.users, CONFIG.spawn_rate))
