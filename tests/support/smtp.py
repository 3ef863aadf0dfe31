"""A real SMTP server on loopback (aiosmtpd) that records what it receives.

Its replies can be scripted: ``server.script("451 4.3.0 Try again later")``
makes the next DATA answer that instead of accepting, so tests can drive
transient and permanent failures through a real SMTP conversation.
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.services import free_port


@dataclass
class Received:
    envelope_from: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RecordingHandler:
    received: list[Received] = field(default_factory=list)
    scripted: deque[str] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.scripted:
                return self.scripted.popleft()
            self.received.append(
                Received(
                    envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content)
                )
            )
            self.arrived.notify_all()
        return "250 2.0.0 Ok: queued"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 and a free port, recording every accepted mail."""

    def __init__(self) -> None:
        self.handler = RecordingHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def script(self, *replies: str) -> None:
        """The next DATA commands get these replies, in order, instead of 250."""
        with self.handler.lock:
            self.handler.scripted.extend(replies)

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until at least ``count`` mails have arrived; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.handler.arrived:
            while len(self.handler.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} mails, got {len(self.handler.received)} after {timeout}s"
                    )
                self.handler.arrived.wait(left)
            return list(self.handler.received)
