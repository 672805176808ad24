"""Load generation with Locust, split across two processes that must never mix.

Locust monkey-patches the standard library with gevent on import, so it runs in its own
process and the engine never imports `locust` or `gevent`. The pieces, by where they run:

Locust process (imports locust first; loaded by path with `locust -f`):
  locustfile.py  the users an experiment's `load:` section describes
  listener.py    our `events.request` hook: aggregates requests into buckets and streams
                 them as JSON lines (loaded beside our locustfile or a user's locustfile)

Engine process (no locust, no gevent):
  runner.py      `LoadRun`: starts and stops Locust, merges the streams into `load.csv`

Both (pure Python, no locust):
  config.py      what the engine tells the Locust process (one JSON file)
  stream.py      the JSON-lines protocol: the bucket aggregator and the merger
  histogram.py   the mergeable latency histogram percentiles are computed from
  failures.py    which failure class (refused, reset, timeout, http_5xx, other) an error is
  lifetime.py    tie a child process's life to its parent's

This package's `__init__` imports nothing so that the Locust side loads only what it uses.
"""
