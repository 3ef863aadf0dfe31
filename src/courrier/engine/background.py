"""The loops a worker runs beside its dispatcher: inbox feedback and webhook deliveries."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.engine import Engine

from courrier.clock import Clock, utcnow
from courrier.engine.feedback import FeedbackLoop
from courrier.engine.webhook_delivery import WebhookDeliverer
from courrier.settings import Settings

__all__ = ["BackgroundLoops"]

log = logging.getLogger(__name__)


class BackgroundLoops:
    """Starts each loop in its own thread; ``stop`` ends them and waits."""

    def __init__(self, engine: Engine, settings: Settings, *, clock: Clock = utcnow) -> None:
        self.feedback = FeedbackLoop(engine, settings, clock=clock)
        self.webhooks = WebhookDeliverer(engine, settings, clock=clock)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> BackgroundLoops:
        for name, loop in (("feedback", self.feedback), ("webhooks", self.webhooks)):
            thread = threading.Thread(
                target=self._guarded, args=(name, loop.run), name=f"courrier-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def _guarded(self, name: str, run: object) -> None:
        """A loop that raises is logged and started again after a pause, until stopped."""
        assert callable(run)
        while not self._stop.is_set():
            try:
                run(self._stop)
            except Exception:
                log.exception("the %s loop failed; starting it again in 5 s", name)
                self._stop.wait(5.0)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.webhooks.close()
