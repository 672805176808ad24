"""Run every benchmark module (`bench/*_bench.py`), or those named on the command line.

Each module exposes `main() -> None` that prints its own medians and ratios. Benchmarks
never assert: these machines are shared and noisy, so the numbers are for people to read
(and for issue notes), measured side by side within one run.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench


def main(argv: list[str]) -> None:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.endswith("_bench"))
    chosen = [n for n in names if not argv or any(a in n for a in argv)]
    for name in chosen:
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        importlib.import_module(f"bench.{name}").main()
        print(f"--- {name}: {time.monotonic() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
