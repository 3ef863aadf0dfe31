"""Rate limits per tenant and per recipient domain, shared by every worker through the database.

PLACEHOLDER (issue 5, webhooks helper): signatures are the contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from courrier.settings import Settings
from courrier.store.queue import ClaimedMessage

__all__ = ["Deferral", "rate_limited"]


@dataclass(frozen=True)
class Deferral:
    """A claimed message held back by a limit: back in the queue until ``due_at``."""

    message_id: int
    due_at: datetime
    reason: str


def rate_limited(
    conn: Connection, claimed: Sequence[ClaimedMessage], now: datetime, settings: Settings
) -> list[Deferral]:
    """The claimed messages over their tenant's or recipient domain's limit this minute."""
    return []
