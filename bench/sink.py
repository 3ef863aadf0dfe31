"""Postfix's ``smtp-sink`` as a subprocess: a fast C SMTP server that accepts and discards.

The benchmarks send into it so that they measure the sender, not the server.
It is started on 127.0.0.1 and on a port checked free first: ``smtp-sink``
sets ``SO_REUSEPORT``, so a second sink on a busy port would silently share
it and split the count. It runs with ``-c``, and its running counters
(``sess=N quit=N mesg=N``) are read back to check how many mails arrived.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

SMTP_SINK = "/usr/sbin/smtp-sink"
COUNTERS = re.compile(rb"sess=(\d+) quit=(\d+) mesg=(\d+)")


class SinkError(RuntimeError):
    """The sink is missing, could not start, or stopped early; the message says what to do."""


def sink_binary() -> str:
    """The path of ``smtp-sink``, or :class:`SinkError` saying how to install it."""
    found = shutil.which("smtp-sink") or (SMTP_SINK if Path(SMTP_SINK).exists() else None)
    if found is None:
        raise SinkError(
            "smtp-sink is missing: run scripts/services install (Debian package postfix)"
        )
    return found


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` (``ss`` when present, else a bind test)."""
    if shutil.which("ss"):
        listing = subprocess.run(
            ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=False
        )
        if listing.returncode == 0:
            return not listing.stdout.strip()
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", tries: int = 20) -> int:
    """A port the kernel hands out on ``host`` and that ``ss`` confirms nobody listens on."""
    for _ in range(tries):
        with socket.socket() as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port_is_free(port, host):
            return port
    raise SinkError(f"found no free port on {host} after {tries} tries")


class SmtpSink:
    """One ``smtp-sink`` process on 127.0.0.1; use as a context manager."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int | None = None, backlog: int = 256
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.backlog = backlog
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._counters = (0, 0, 0)
        self._output: list[bytes] = []

    @property
    def messages(self) -> int:
        """Mails received so far (the sink's ``mesg`` counter)."""
        with self._lock:
            return self._counters[2]

    @property
    def sessions(self) -> int:
        """SMTP sessions ended so far (the sink's ``sess`` counter)."""
        with self._lock:
            return self._counters[0]

    def command(self) -> list[str]:
        """The command line: counters on, unprivileged user when run as root."""
        argv = [sink_binary(), "-c"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]
        return [*argv, f"{self.host}:{self.port}", str(self.backlog)]

    def start(self, timeout: float = 5.0) -> SmtpSink:
        """Start the sink and wait until it accepts connections."""
        if not port_is_free(self.port, self.host):
            raise SinkError(f"port {self.port} on {self.host} is in use: smtp-sink would share it")
        self._process = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._reader = threading.Thread(
            target=self._read_counters, name="smtp-sink-reader", daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise SinkError(f"smtp-sink stopped at start: {self.output().strip()}")
            if self._accepts():
                return self
            time.sleep(0.02)
        self.stop()
        raise SinkError(f"smtp-sink did not listen on {self.host}:{self.port} within {timeout} s")

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.recv(256)  # the greeting; the sink counts this session on close
                sock.sendall(b"QUIT\r\n")
            return True
        except OSError:
            return False

    def _read_counters(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        stream = self._process.stdout.fileno()
        pending = b""
        while chunk := os.read(stream, 4096):
            pending += chunk
            *lines, pending = re.split(rb"[\r\n]", pending)
            for line in lines:
                self._take_line(line)
        self._take_line(pending)

    def _take_line(self, line: bytes) -> None:
        found = COUNTERS.search(line)
        with self._lock:
            if found:
                self._counters = (int(found[1]), int(found[2]), int(found[3]))
            elif line.strip():
                self._output.append(line)

    def output(self) -> str:
        """What the sink printed besides its counters (errors, warnings)."""
        with self._lock:
            return b"\n".join(self._output).decode(errors="replace")

    def wait_for_messages(self, count: int, timeout: float = 5.0) -> int:
        """Wait until the sink has counted ``count`` mails (or the timeout); the count reached."""
        deadline = time.monotonic() + timeout
        while self.messages < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.messages

    def stop(self) -> None:
        """Stop the sink and its reader."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
