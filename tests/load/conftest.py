"""Fixtures for tests/load: a misbehaving local HTTP server and a closed port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from load_helpers import LoadTestServer


@pytest.fixture
def server() -> Iterator[LoadTestServer]:
    with LoadTestServer() as running:
        yield running


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port
