"""analysis and specload are packages split by concept (docs/architecture.md); what they
offered as single modules is still where it was.

- `chaoslab.analysis` is the one place a metric is looked up: every public name defined
  in a module of the package is on the package itself, the same object.
- `chaoslab.analysis_autoscale` and `chaoslab.analysis_data` (the old module paths) are
  the moved modules themselves.
- `chaoslab.specload`'s public API imports from `chaoslab.specload`.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil

from chaoslab import analysis


def _public_definitions(module: object) -> list[str]:
    """Names a module defines at its top level (not imports), without a leading underscore."""
    tree = ast.parse(inspect.getsource(module))
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [target.id for target in node.targets if isinstance(target, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [name for name in names if not name.startswith("_")]


def test_every_public_definition_of_the_analysis_package_is_on_chaoslab_analysis() -> None:
    missing = []
    for info in pkgutil.iter_modules(analysis.__path__):
        module = importlib.import_module(f"chaoslab.analysis.{info.name}")
        for name in _public_definitions(module):
            if getattr(analysis, name, None) is not getattr(module, name):
                missing.append(f"{info.name}.{name}")
    assert not missing, f"not re-exported by chaoslab/analysis/__init__.py: {missing}"
    assert sorted(analysis.__all__) == sorted(set(analysis.__all__))
    assert all(hasattr(analysis, name) for name in analysis.__all__)


def test_the_old_analysis_module_paths_are_the_moved_modules() -> None:
    import chaoslab.analysis_autoscale
    import chaoslab.analysis_data
    from chaoslab.analysis import autoscale, integrity
    from chaoslab.analysis_autoscale import autoscaler_over_time, users_over_time
    from chaoslab.analysis_data import lost_writes

    assert chaoslab.analysis_autoscale is autoscale
    assert chaoslab.analysis_data is integrity
    assert (autoscaler_over_time, users_over_time) == (autoscale.autoscaler_over_time, autoscale.users_over_time)
    assert lost_writes is analysis.lost_writes


def test_the_specload_api_imports_from_chaoslab_specload() -> None:
    from chaoslab import specload
    from chaoslab.specload import (  # noqa: F401 - the import is the test
        MAX_DEPTH,
        MAX_FILE_BYTES,
        MAX_NODES,
        MAX_SWEEP_POINTS,
        SCHEMA_DIALECT,
        display_path,
        experiment_json_schema,
        load_experiment,
        parse_override,
    )

    assert all(hasattr(specload, name) for name in specload.__all__)
