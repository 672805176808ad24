"""The two import boundaries the design rests on (docs/architecture.md).

- `kubernetes` is imported by one module only, the backend's client wrapper: every API
  call, error mapping and version difference lives behind it (and tests fake it there).
- `locust` and `gevent` are imported only by the files Locust loads in its own process:
  gevent's monkey-patching in the engine's process breaks `ssl`, `requests` and the
  `kubernetes` client (RecursionError).

Checked on the source (imports anywhere in a module, also inside functions), and on the
engine's real import graph: importing the CLI, engine and both backends loads neither.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "chaoslab"
ALLOWED = {
    "kubernetes": {"cluster/kube/client.py"},
    "locust": {"load/locustfile.py", "load/listener.py", "load/stages.py", "load/kvusers.py"},
    "gevent": {"load/locustfile.py", "load/listener.py", "load/kvusers.py"},
}


def _top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_kubernetes_locust_and_gevent_are_imported_only_where_allowed() -> None:
    found: dict[str, set[str]] = {library: set() for library in ALLOWED}
    for path in PACKAGE.rglob("*.py"):
        imports = _top_level_imports(path)
        for library in ALLOWED:
            if library in imports:
                found[library].add(path.relative_to(PACKAGE).as_posix())
    for library, allowed in ALLOWED.items():
        assert found[library] <= allowed, f"{library} imported outside {sorted(allowed)}: {sorted(found[library] - allowed)}"
    assert found["kubernetes"], "the client wrapper no longer imports kubernetes: update this test"


def test_the_engine_process_never_loads_locust_or_gevent() -> None:
    probe = (
        "import sys\n"
        "import chaoslab.cli, chaoslab.engine, chaoslab.report, chaoslab.load.runner\n"
        "import chaoslab.cluster.sim, chaoslab.cluster.kube.client\n"
        "print(sorted(m for m in ('locust', 'gevent') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
