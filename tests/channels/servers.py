"""SMTP servers with a twist, for delivery tests: slow, counting connections, refusing, silent.

Each is a real aiosmtpd server on loopback (or a real socket that never
speaks), built on :class:`tests.support.smtp.SmtpServer`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiosmtpd.controller import Controller
from tests.support.smtp import RecordingHandler, SmtpServer


class CountingHandler(RecordingHandler):
    """Records mail, counts SMTP sessions (EHLO), and can wait a while before each answer."""

    def __init__(self, delay: float = 0.0, refuse_rcpt: str | None = None) -> None:
        super().__init__()
        self.delay = delay
        self.refuse_rcpt = refuse_rcpt
        self.sessions = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def serve(handler: RecordingHandler, port: int | None = None) -> SmtpServer:
    """A started SmtpServer using ``handler`` (on ``port``, or a free one)."""
    server = SmtpServer()
    if port is not None:
        server.port = port
    server.handler = handler
    server.controller.loop.close()  # the unused default controller's loop
    server.controller = Controller(handler, hostname="127.0.0.1", port=server.port)
    return server.start()


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word (for timeouts)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not done.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        done.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()
