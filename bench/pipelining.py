"""A minimal SMTP client that pipelines (RFC 2920), to measure what pipelining is worth.

``smtplib`` waits for each reply: MAIL, RCPT, DATA and the message body are
four round trips. With PIPELINING, MAIL, RCPT and DATA go in one write and
their three replies are read together, then the body: two round trips. This
client exists only so the benchmark can show that difference on the same
sink; it handles the happy path and raises on any unexpected reply.
"""

from __future__ import annotations

import socket
from types import TracebackType


class PipelineError(RuntimeError):
    """The server answered something this minimal client does not handle."""


class PipelinedSmtp:
    """One SMTP connection sending each mail in two round trips."""

    def __init__(self, host: str, port: int, *, timeout: float = 30.0) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = self._sock.makefile("rb")
        self._expect(220)
        self._sock.sendall(b"EHLO bench.localhost\r\n")
        extensions = self._reply_lines()
        if not any(line[4:].upper().startswith(b"PIPELINING") for line in extensions):
            raise PipelineError("the server does not announce PIPELINING")

    def _reply_lines(self) -> list[bytes]:
        lines = []
        while True:
            line = self._reader.readline()
            if not line:
                raise PipelineError("connection closed by the server")
            lines.append(line.rstrip(b"\r\n"))
            if line[3:4] != b"-":
                return lines

    def _expect(self, *codes: int) -> None:
        for code in codes:
            last = self._reply_lines()[-1]
            if not last.startswith(str(code).encode()):
                raise PipelineError(f"expected {code}, got {last!r}")

    def sendmail(self, envelope_from: str, recipient: str, data: bytes) -> None:
        """Send one mail: MAIL+RCPT+DATA in one write, then the dot-stuffed body."""
        self._sock.sendall(
            f"MAIL FROM:<{envelope_from}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode()
        )
        self._expect(250, 250, 354)
        body = data.replace(b"\r\n.", b"\r\n..")
        if body.startswith(b"."):
            body = b"." + body
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        self._sock.sendall(body + b".\r\n")
        self._expect(250)

    def quit(self) -> None:
        try:
            self._sock.sendall(b"QUIT\r\n")
            self._expect(221)
        finally:
            self._reader.close()
            self._sock.close()

    def __enter__(self) -> PipelinedSmtp:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.quit()
