"""A dispatcher on the test SMTP server, for tests that send what they planned."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine

from courrier.channels.email import SmtpSender
from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from courrier.settings import Settings


@contextmanager
def dispatcher_for(
    engine: Engine,
    settings: Settings,
    clock: ManualClock,
    worker_id: str = "worker",
    pool_size: int = 1,
) -> Iterator[Dispatcher]:
    """A dispatcher sending to ``settings.smtp`` on ``clock``; closed with its sender after."""
    assert settings.smtp is not None
    sender = SmtpSender(settings.smtp, pool_size=pool_size, timeout=5.0)
    worker = Dispatcher(engine, settings, sender, clock=clock, worker_id=worker_id)
    try:
        yield worker
    finally:
        worker.close()
        sender.close()
