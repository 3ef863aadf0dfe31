"""Follow-ups of important messages: planned when the original leaves, stopped by a proven read.

PLACEHOLDER (issue 5, follow-ups helper): signatures are the contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection

from courrier.engine.results import SendResult
from courrier.engine.sendcheck import Verdict
from courrier.store.queue import ClaimedMessage

__all__ = ["plan_follow_ups", "stale_follow_ups", "stop_follow_ups"]


def plan_follow_ups(conn: Connection, results: Sequence[SendResult], now: datetime) -> int:
    """Plan the follow-ups of the originals just sent that carry a policy; how many planned."""
    return 0


def stop_follow_ups(
    conn: Connection, original_ids: Sequence[int], reason: str, now: datetime
) -> int:
    """Cancel the follow-ups not yet sent of these originals, with ``reason``; how many."""
    return 0


def stale_follow_ups(conn: Connection, claimed: Sequence[ClaimedMessage]) -> list[Verdict]:
    """Claimed follow-ups whose original was accessed or answered meanwhile: cancelled."""
    return []
