"""The bounds that keep reading a hostile experiment file cheap, in one place.

Read by the YAML reader (`yamlfile`), the `--set` parser (`overrides`) and the sweep checks
(`sweep`); kept together so the numbers can be judged side by side against a real file.
"""

from __future__ import annotations

# An experiment file is a few kilobytes; these bounds are orders of magnitude above any
# real file and keep parsing of a hostile one under a second.

# Largest file read at all (1 MiB).
MAX_FILE_BYTES = 1024 * 1024
# Deepest nesting of mappings/lists; the deepest real path is about 7 levels
# (cluster.kubernetes.nodeProvider..., workload.readinessProbe.httpGet.path).
MAX_DEPTH = 40
# Most YAML nodes after expanding aliases: stops "billion laughs" alias bombs, which are
# tiny on disk and exponential once expanded.
MAX_NODES = 20_000
# Most sweep points (cartesian product size) an experiment may expand to.
MAX_SWEEP_POINTS = 1000
