"""Which failure class a failed request belongs to, from what the HTTP client reported.

A chaos run is read through its failure classes: `refused` (nothing listens: the pod is
gone), `reset` (the connection died under the request: the pod was killed mid-flight),
`timeout` (no answer in time: a hung node), `http_5xx` (the server answered with an error)
and `other`. Clients wrap the socket error differently, so the class is found by walking
the whole exception chain. Verified against real sockets (closed port, accept-then-RST,
accept-then-close, accept-and-never-answer) in tests/load:

  FastHttpUser (geventhttpclient, max_retries=0)
    closed port            ConnectionRefusedError                               refused
    RST / close before any HTTPConnectionClosed, __context__ ConnectionResetError  reset
      response bytes       (or HTTPConnectionClosed alone after a clean close)
    RST mid-body           ConnectionResetError (response status 200)            reset
    no answer / no accept  RetriesExceeded(original=TimeoutError)                timeout
    HTTP 500               LocustBadStatusCode(code=500), response.status_code 500  http_5xx
    HTTP 404, bad status   LocustBadStatusCode(code=404), HTTPParseError         other
  HttpUser (requests)
    closed port            ConnectionRefusedError                               refused
    RST                    ConnectionResetError                                 reset
    close before response  RemoteDisconnected                                   reset
    no answer              ReadTimeout -> ReadTimeoutError -> TimeoutError      timeout
    no accept              ConnectTimeoutError -> TimeoutError                  timeout
    HTTP 500               HTTPError, response.status_code 500                  http_5xx

Pure standard library: the third-party classes are recognised by name, so this module
(and its tests) need neither locust nor gevent.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

REFUSED = "refused"
RESET = "reset"
TIMEOUT = "timeout"
HTTP_5XX = "http_5xx"
OTHER = "other"
FAILURE_CLASSES = (REFUSED, RESET, TIMEOUT, HTTP_5XX, OTHER)
"""The failure columns of load.csv, in column order."""

_RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})
# Class names (anywhere in the MRO) of client exceptions that mean "the connection closed
# before a complete response": geventhttpclient's HTTPConnectionClosed and EmptyResponse,
# http.client's RemoteDisconnected and IncompleteRead.
_RESET_NAMES = frozenset({"HTTPConnectionClosed", "EmptyResponse", "RemoteDisconnected", "IncompleteRead"})
# How deep to follow an exception chain; real chains are 2-5 links long.
_MAX_CHAIN = 16


def classify_failure(exception: BaseException, response: object = None) -> str:
    """The load.csv failure class of a failed request (one of `FAILURE_CLASSES`).

    Socket-level causes found anywhere in the chain decide first (they say most about the
    fault), then client exceptions recognised by name, then the HTTP status of the
    response (5xx), else `other` (HTTP 4xx, protocol errors, failures a user's locustfile
    raised itself with `response.failure(...)` on a non-5xx answer).
    """
    chain = list(_exception_chain(exception))
    for error in chain:
        found = _socket_class(error)
        if found:
            return found
    for error in chain:
        found = _client_class(error)
        if found:
            return found
    status = _status_code(response)
    if status is None:
        for error in chain:
            status = _status_code(getattr(error, "response", None)) or _int_or_none(getattr(error, "code", None))
            if status is not None:
                break
    if status is not None and 500 <= status <= 599:
        return HTTP_5XX
    return OTHER


def _exception_chain(exception: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps, breadth first: `original` (geventhttpclient's
    RetriesExceeded), `reason` (urllib3), `__cause__`, `__context__` and exception args."""
    queue: list[object] = [exception]
    seen: set[int] = set()
    while queue and len(seen) < _MAX_CHAIN:
        error = queue.pop(0)
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        queue.extend((getattr(error, "original", None), getattr(error, "reason", None)))
        queue.extend((error.__cause__, error.__context__))
        queue.extend(arg for arg in error.args if isinstance(arg, BaseException))


def _socket_class(error: BaseException) -> str | None:
    if isinstance(error, ConnectionRefusedError):
        return REFUSED
    if isinstance(error, TimeoutError):  # socket.timeout is TimeoutError since Python 3.10
        return TIMEOUT
    if isinstance(error, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return RESET
    if isinstance(error, OSError):
        if error.errno == errno.ECONNREFUSED:
            return REFUSED
        if error.errno == errno.ETIMEDOUT:
            return TIMEOUT
        if error.errno in _RESET_ERRNOS:
            return RESET
    return None


def _client_class(error: BaseException) -> str | None:
    names = {cls.__name__ for cls in type(error).__mro__}
    if names & _RESET_NAMES:
        return RESET
    # gevent.Timeout, requests' Timeout/ReadTimeout/ConnectTimeout, urllib3's *TimeoutError.
    # (urllib3's NewConnectionError subclasses ConnectTimeoutError, but a refused
    # connection carries its ConnectionRefusedError, which the socket pass found first.)
    if any("Timeout" in name for name in names):
        return TIMEOUT
    return None


def _status_code(response: object) -> int | None:
    if response is None:
        return None
    return _int_or_none(getattr(response, "status_code", None)) or None  # 0: no response


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
