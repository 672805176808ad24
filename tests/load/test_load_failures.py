"""Failure classes of the exceptions `requests` (Locust's HttpUser client) really raises.

FastHttpUser's exceptions are checked end to end in test_load_runner.py (real Locust);
here the other client a person's locustfile is likely to use meets the same real sockets,
in this process (requests does not need gevent).
"""

from __future__ import annotations

import pytest
import requests
from load_helpers import LoadTestServer

from chaoslab.load.failures import FAILURE_CLASSES, classify_failure


def failure_of(url: str) -> str:
    try:
        response = requests.get(url, timeout=0.3)
        response.raise_for_status()
    except requests.RequestException as exc:
        return classify_failure(exc, exc.response)
    raise AssertionError(f"{url} did not fail")


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/status/500", "http_5xx"), ("/reset", "reset"), ("/hang", "timeout")],
)
def test_requests_errors_against_real_sockets(server: LoadTestServer, path: str, expected: str) -> None:
    assert failure_of(server.url + path) == expected


def test_refused_is_not_mistaken_for_a_timeout(closed_port: int) -> None:
    # urllib3's NewConnectionError subclasses ConnectTimeoutError; the socket error decides.
    assert failure_of(f"http://127.0.0.1:{closed_port}/") == "refused"


def test_other_for_client_errors_and_failures_a_locustfile_declares() -> None:
    class FakeResponse:
        status_code = 404

    assert classify_failure(ValueError("bad json"), FakeResponse()) == "other"
    assert classify_failure(RuntimeError("checkout failed")) == "other"
    assert set(FAILURE_CLASSES) == {"refused", "reset", "timeout", "http_5xx", "other"}


def test_the_socket_cause_wins_over_its_wrapper() -> None:
    try:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except ConnectionResetError as exc:
            raise RuntimeError("connection closed.") from exc
    except RuntimeError as wrapped:
        assert classify_failure(wrapped) == "reset"
