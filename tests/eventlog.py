"""Collecting a `Cluster`'s events in a test and waiting for a condition on them.

One helper for the tests of the kubernetes backend against the fake API and against the
real control plane: both drain `Cluster.events()` and poll; only their deadlines differ
(`deadline_s` and `poll_s`, set by each suite's subclass).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd

from chaoslab.cluster.base import EVENT_COLUMNS, Cluster, ClusterEvent, EventKind


class EventLog:
    """Collects a cluster's events; `wait_for` polls until a predicate on them holds."""

    deadline_s: float  # how long `wait_for` waits by default
    poll_s: float  # how often it drains meanwhile

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.events: list[ClusterEvent] = []

    def drain(self) -> list[ClusterEvent]:
        self.events += list(self.cluster.events())
        return self.events

    def wait_for(self, predicate: Callable[[EventLog], bool], what: str, deadline_s: float | None = None) -> None:
        deadline_s = self.deadline_s if deadline_s is None else deadline_s
        deadline = time.monotonic() + deadline_s
        while True:
            self.drain()
            if predicate(self):
                return
            if time.monotonic() >= deadline:
                shown = "\n  ".join(f"{e.ts:.1f} {e.kind.value} {e.name} {e.node} {e.reason} {e.detail}" for e in self.events[-60:])
                raise AssertionError(f"timed out after {deadline_s:g}s waiting for {what}; last events:\n  {shown}")
            time.sleep(self.poll_s)

    def of(self, kind: EventKind, name: str | None = None, node: str | None = None) -> list[ClusterEvent]:
        return [
            e for e in self.events
            if e.kind is kind and (name is None or e.name == name) and (node is None or e.node == node)
        ]

    def ready_endpoints(self) -> set[str]:
        """Pods the Service routes to now, by replaying endpoint events."""
        ready: set[str] = set()
        for event in sorted(self.events, key=lambda e: e.ts):
            if event.kind is EventKind.ENDPOINT_ADDED:
                ready.add(event.name)
            elif event.kind is EventKind.ENDPOINT_REMOVED:
                ready.discard(event.name)
        return ready

    def frame(self) -> pd.DataFrame:
        """The events as `events.csv` holds them, for chaoslab.analysis."""
        return pd.DataFrame([e.row() for e in self.events], columns=list(EVENT_COLUMNS))
