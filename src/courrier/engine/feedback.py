"""Applying what the inbox learnt: bounces, replies and mail from an address.

PLACEHOLDER (issue 5, bounces helper): signatures are the contract.
"""

from __future__ import annotations

import threading

from sqlalchemy.engine import Engine

from courrier.clock import Clock, utcnow
from courrier.settings import Settings

__all__ = ["FeedbackLoop"]


class FeedbackLoop:
    """Applies filed inbound mails not applied yet; ``run`` loops until ``stop``."""

    def __init__(self, engine: Engine, settings: Settings, *, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock

    def run_once(self) -> int:
        """Apply one batch; how many inbound mails it applied."""
        return 0

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self.run_once():
                stop.wait(self.settings.poll_seconds)
