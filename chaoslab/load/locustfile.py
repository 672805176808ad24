"""The built-in Locust users: what an experiment's `load:` section describes, as a locustfile.

Loaded by path by the Locust command line (`locust -f chaoslab/load/locustfile.py,...`),
with its settings from the JSON file named in `CHAOSLAB_LOAD_CONFIG` (config.py). One
FastHttpUser class (geventhttpclient: about four times the requests per core of HttpUser):

- tasks: one per `load.requests` entry, weighted by `weight`, sent as `method path`
  and named `name` (or the path) in Locust's statistics;
- wait: uniform in [`waitTime.min`, `waitTime.max`] between two requests of a user;
- connect and read timeouts: `load.timeout`; no retries (a failure must show as one,
  see `SingleAttemptClientPool` for the retry geventhttpclient hides);
- start jitter: each user first sleeps a random part of one wait interval, so users
  spawned together do not fire in lockstep for the whole run.

The start jitter and waits use generators seeded from `seed` and the worker index; task
choice uses Locust's (the process-wide `random`), which the test start seeds too.
"""

from __future__ import annotations

import locust  # noqa: F401  (first: gevent must monkey-patch before anything else loads)

import os
import random
from collections.abc import Callable
from typing import Any

import gevent
from geventhttpclient.client import HTTPClient, HTTPClientPool
from geventhttpclient.url import URL
from locust import FastHttpUser, events
from locust.env import Environment

from chaoslab.load.config import LocustConfig, RequestConfig

CONFIG = LocustConfig.from_environment(os.environ)


def _task(request: RequestConfig) -> Callable[[FastHttpUser], None]:
    def send(user: FastHttpUser) -> None:
        user.client.request(request.method, request.path, name=request.name)

    send.__name__ = f"{request.method} {request.path}"
    return send


class SingleAttemptClientPool(HTTPClientPool):
    """geventhttpclient's clients, each sending a request exactly once.

    Besides `max_retries`, `HTTPClient.request` silently resends an idempotent request
    whose connection closed or reset, up to `connection pool size + 1` times (11 with
    Locust's defaults): measured against a server that resets every connection, it saw
    12 attempts per failure Locust reported. In a chaos run that would hide the resets of
    a killed pod behind a retry to another one. The retry budget is `size + 1`, and
    `size` is read nowhere else, so -1 turns the retry off and leaves the pool as it is.
    """

    def get_client(self, url: str | URL) -> HTTPClient:
        client = super().get_client(url)
        client._connection_pool.size = -1
        return client


class ChaoslabUser(FastHttpUser):
    """A client of the service under test, as `load:` describes it."""

    host = CONFIG.target_url
    network_timeout = CONFIG.timeout
    connection_timeout = CONFIG.timeout
    max_retries = 0
    tasks = {_task(request): request.weight for request in CONFIG.requests}

    # Seeds each user's generator; replaced at test start with one seeded per worker.
    seeds = random.Random(CONFIG.seed)

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        agent = self.client.client
        agent.clientpool = SingleAttemptClientPool(**agent.clientpool.client_args)

    def on_start(self) -> None:
        self.rng = random.Random(self.seeds.getrandbits(64))
        gevent.sleep(self.rng.uniform(0.0, CONFIG.wait_max))

    def wait_time(self) -> float:
        return self.rng.uniform(CONFIG.wait_min, CONFIG.wait_max)


@events.test_start.add_listener
def _seed_generators(environment: Environment, **_: Any) -> None:
    # Workers learn their index from the master before the test starts; -1 or 0 locally.
    worker_index = getattr(environment.runner, "worker_index", 0)
    ChaoslabUser.seeds = random.Random(f"{CONFIG.seed}:{worker_index}:users")
    random.seed(f"{CONFIG.seed}:{worker_index}:tasks")
