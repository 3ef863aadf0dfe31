"""Finding the real parts the tests use, and saying what to do when one is missing.

Outside CI a missing part skips the test with what to install; with
``COURRIER_REQUIRE_SERVICES=1`` (CI) it fails the test instead.
"""

from __future__ import annotations

import os
import socket

import pytest

REQUIRE = os.environ.get("COURRIER_REQUIRE_SERVICES") == "1"


def missing(part: str, how: str) -> None:
    """Skip (or fail in CI) because ``part`` is missing; ``how`` says how to get it."""
    message = f"{part} is not available: {how}"
    if REQUIRE:
        pytest.fail(message + " (COURRIER_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
