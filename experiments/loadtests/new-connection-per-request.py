"""Clients that open a new TCP connection for every request (`Connection: close`).

Why it exists: a Kubernetes Service (kube-proxy, and the sim's Service proxy) balances
CONNECTIONS, not requests. chaoslab's built-in users keep their connection alive, so
after `scale` every one of them stays pinned to the pod it first reached and the new
replicas get no traffic: scaling out would look useless. Many real clients (browsers
behind different NATs, short-lived jobs, clients of an HTTP/1.0 proxy) arrive on new
connections; these users model them, so each request is balanced afresh.

Everything else is the built-in user (`chaoslab.load.locustfile.ChaoslabUser`): the
`load:` section's waitTime and timeout, seeded start jitter and waits, and exactly one
attempt per request (no hidden retries). Used by experiments/scale-under-load.yaml.
"""

from __future__ import annotations

import locust  # noqa: F401  (first: gevent must monkey-patch before anything else loads)

# Imported as a module, not `from ... import ChaoslabUser`: Locust runs every User class
# it finds in this file's namespace, and we want only the one below.
from chaoslab.load import locustfile as builtin


def _get_root_on_new_connection(user: builtin.ChaoslabUser) -> None:
    # `Connection: close`: the app answers and closes, the next request reconnects and
    # the Service picks a backend for it again.
    user.client.request("GET", "/", name="/", headers={"Connection": "close"})


class NewConnectionPerRequestUser(builtin.ChaoslabUser):
    """The built-in user with one task: GET / on a fresh connection."""

    tasks = [_get_root_on_new_connection]
