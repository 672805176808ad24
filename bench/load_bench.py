"""Does our load path cost throughput? `LoadRun` (Locust + our listener + the engine's
reader) against plain `locust --headless`, same users, same fast local server.

Target (issue 4): the engine's load path sustains at least 90 % of plain Locust's
requests/s. Users never wait, so Locust saturates its core and any per-request cost of
the listener shows. Requests are counted by the server over a steady window (after a
warm-up), the same way for both; runs alternate plain/ours and the medians are compared.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from chaoslab.load.runner import LoadRun
from chaoslab.spec import LoadSpec

USERS = 20
RUNS = 3  # of each kind
WARMUP_S = 2.0
WINDOW_S = 5.0

_PLAIN_LOCUSTFILE = textwrap.dedent(
    """
    from locust import FastHttpUser, constant, task

    class Plain(FastHttpUser):
        wait_time = constant(0)
        network_timeout = 2.0
        connection_timeout = 2.0

        @task
        def root(self):
            self.client.get("/")
    """
)


def serve() -> None:
    """A minimal keep-alive HTTP/1.1 server (asyncio, one core): prints its port, answers
    `ok` to everything and the number of requests served to GET /__count."""
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if head.split(b" ", 2)[1] == b"/__count":
                    body = str(served).encode()
                else:
                    served += 1
                    body = b"ok"
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


def _served(url: str) -> int:
    with urllib.request.urlopen(f"{url}/__count", timeout=5) as response:
        return int(response.read())


def _wait_for_traffic(url: str, timeout: float = 60.0) -> None:
    start = _served(url)
    deadline = time.monotonic() + timeout
    while _served(url) == start:
        if time.monotonic() > deadline:
            raise RuntimeError("Locust sent no request within 60 s")
        time.sleep(0.05)


def _measure(url: str, keep_busy: Callable[[], None] | None = None) -> float:
    """Requests/s the server saw over WINDOW_S after WARMUP_S; `keep_busy()` runs between."""
    end_warmup = time.monotonic() + WARMUP_S
    while time.monotonic() < end_warmup:
        if keep_busy is not None:
            keep_busy()
        time.sleep(0.1)
    first, started = _served(url), time.monotonic()
    while time.monotonic() < started + WINDOW_S:
        if keep_busy is not None:
            keep_busy()
        time.sleep(0.1)
    return (_served(url) - first) / (time.monotonic() - started)


def plain_locust(url: str, workdir: Path) -> float:
    workdir.mkdir(parents=True)
    locustfile = workdir / "plain_locustfile.py"
    locustfile.write_text(_PLAIN_LOCUSTFILE)
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--users", str(USERS),
               "--spawn-rate", "1000", "--host", url, "--only-summary", "--loglevel", "WARNING"]
    with (workdir / "plain.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            _wait_for_traffic(url)
            return _measure(url)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def our_load_path(url: str, workdir: Path) -> tuple[float, int]:
    load = LoadSpec.model_validate(
        {"users": USERS, "spawnRate": 1000, "waitTime": {"min": 0, "max": 0}, "timeout": "2s"}
    )
    run = LoadRun(load, url, 0.1, workdir / "trial", seed=1, experiment_dir=workdir)
    rows = 0

    def poll() -> None:
        nonlocal rows
        rows += len(run.poll())
        run.live()

    run.start()
    try:
        _wait_for_traffic(url)
        return _measure(url, keep_busy=poll), rows
    finally:
        run.stop()


def main() -> None:
    server = subprocess.Popen([sys.executable, "-c", "from bench.load_bench import serve; serve()"],
                              stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1])
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline())}"
        plain, ours = [], []
        with tempfile.TemporaryDirectory(prefix="chaoslab-load-bench-") as tmp:
            for i in range(RUNS):
                plain.append(plain_locust(url, Path(tmp) / f"plain{i}"))
                rate, rows = our_load_path(url, Path(tmp) / f"ours{i}")
                ours.append(rate)
                print(f"run {i + 1}: plain locust {plain[-1]:8.0f} req/s   LoadRun {rate:8.0f} req/s "
                      f"({rows} load.csv rows read)", flush=True)
        plain_median, ours_median = statistics.median(plain), statistics.median(ours)
        print(f"{USERS} FastHttpUsers, no wait, {WINDOW_S:g}s windows, medians of {RUNS}:")
        print(f"  plain locust --headless   {plain_median:8.0f} req/s")
        print(f"  chaoslab LoadRun          {ours_median:8.0f} req/s")
        print(f"  ratio                     {ours_median / plain_median:8.1%}   (target >= 90 %)")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
