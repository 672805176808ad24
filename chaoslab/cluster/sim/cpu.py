"""What a pod's processes really spent on CPU, read from the operating system.

Why it exists: the simulated HPA must be fed the CPU time the pods really burn (the
built-in app's `cpuMs` knob, or a user's own command), measured as the kubelet's
cAdvisor measures a container's cgroup and metrics-server serves it. A simulated pod is
a process group (processes.py), so its CPU time is the sum, over the group's live
processes, of user + system time including that of children they have reaped
(/proc/<pid>/stat fields utime, stime, cutime, cstime). `MetricsServer` scrapes every
pod each `metrics_resolution` (metrics-server --metric-resolution, 15 s) and serves the
rate between a pod's last two scrapes, stamped with the later one and its window, as
the resource metrics API does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Clock ticks per second of the utime/stime fields (sysconf(_SC_CLK_TCK), 100 on Linux).
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds_by_group(groups: Iterable[int], proc: Path = Path("/proc")) -> dict[int, float]:
    """CPU seconds (user + system, with reaped children) of each process group in `groups`.

    A group with no live process is absent. One pass over `proc`, whatever the number of
    groups; processes that vanish during the pass are skipped.
    """
    wanted = set(groups)
    totals: dict[int, float] = {}
    if not wanted:
        return totals
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        # The command (field 2) is in parentheses and may hold spaces: split after it.
        fields = text.rpartition(")")[2].split()
        # After the command: state(3) ppid(4) pgrp(5) ... utime(14) stime(15) cutime(16) cstime(17).
        group = int(fields[2])
        if group in wanted:
            ticks = sum(int(value) for value in fields[11:15])
            totals[group] = totals.get(group, 0.0) + ticks / CLOCK_TICKS
    return totals


@dataclass(frozen=True)
class PodUsage:
    """A pod's CPU rate (cores) over `window` seconds that ended at `ts` (monotonic)."""

    cores: float
    ts: float
    window: float


@dataclass(frozen=True)
class _Scrape:
    key: tuple[str, int]  # (pod, container generation): a restart starts a new counter
    cpu_seconds: float
    ts: float


class MetricsServer:
    """Scrapes the pods' CPU time and serves each pod's rate over its last two scrapes."""

    def __init__(self, resolution: float, proc: Path = Path("/proc")) -> None:
        self.resolution = resolution
        self._proc = proc
        self._next = 0.0
        self._last: dict[str, _Scrape] = {}
        self._usage: dict[str, PodUsage] = {}

    def due(self, now: float) -> bool:
        return now >= self._next

    def scrape(self, now: float, pods: Iterable[tuple[str, int, int]]) -> None:
        """Sample every running pod: (pod name, container generation, process group)."""
        running = list(pods)
        self._next = now + self.resolution
        seconds = cpu_seconds_by_group((group for _, _, group in running), self._proc)
        seen = set()
        for name, generation, group in running:
            if group not in seconds:
                continue
            seen.add(name)
            scrape = _Scrape((name, generation), seconds[group], now)
            previous = self._last.get(name)
            self._last[name] = scrape
            if previous is None or previous.key != scrape.key or now <= previous.ts:
                self._usage.pop(name, None)  # a new container: no rate until its second scrape
                continue
            window = now - previous.ts
            self._usage[name] = PodUsage(max(0.0, (scrape.cpu_seconds - previous.cpu_seconds) / window), now, window)
        for name in set(self._last) - seen:
            del self._last[name]
            self._usage.pop(name, None)

    def usage(self, name: str) -> PodUsage | None:
        """The pod's latest CPU rate, or None (not scraped twice since its container started)."""
        return self._usage.get(name)
