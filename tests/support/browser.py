"""The real parts of the browser tests: Courrier served by uvicorn on loopback, and Chromium.

The server listens on a socket bound before the app is built, so its address
can go into the settings (``base_url``, the links in mails), and a browser
that connects before uvicorn is ready waits in the socket's backlog instead
of being refused: no polling for readiness.

The browser is Debian's Chromium (``apt-get install chromium``, done by
``scripts/services install``), driven by Playwright with ``executable_path``:
Playwright's own browser download is never used. Tests take Playwright's
``expect`` from here, so that without Playwright they are still collected
and the ``browser`` fixture says what to install.
"""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (fails in CI) and says what to install
    expect = None  # type: ignore[assignment]

CHROMIUM_HOW = "run `sudo scripts/services install` (Debian's chromium package)"
PLAYWRIGHT_HOW = "run `scripts/install --test` (the Python package playwright)"


def chromium_path() -> str | None:
    """Debian's Chromium, or None when it is not installed."""
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def listening_socket() -> socket.socket:
    """A TCP socket listening on 127.0.0.1 on a port the kernel chose."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


class LiveServer:
    """``app`` under uvicorn in a thread, on ``sock``; a context manager that stops it."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        self.sock = sock
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name="courrier-live", daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
