"""Posting queued webhook deliveries, signed the Standard Webhooks way, retried with backoff.

PLACEHOLDER (issue 5, webhooks helper): signatures are the contract.
"""

from __future__ import annotations

import threading

from sqlalchemy.engine import Engine

from courrier.clock import Clock, utcnow
from courrier.settings import Settings

__all__ = ["WebhookDeliverer"]


class WebhookDeliverer:
    """Delivers due webhook deliveries; ``run`` loops until ``stop``."""

    def __init__(self, engine: Engine, settings: Settings, *, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock

    def run_once(self) -> int:
        """Claim and post one batch of due deliveries; how many were attempted."""
        return 0

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self.run_once():
                stop.wait(self.settings.poll_seconds)

    def close(self) -> None:
        """Free the HTTP client."""
