"""Address health: counting what fails, blocking what keeps failing, not sending to it.

PLACEHOLDER (issue 5, bounces helper): signatures are the contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection

from courrier.engine.results import SendResult
from courrier.engine.sendcheck import Verdict
from courrier.store.queue import ClaimedMessage

__all__ = ["blocked_verdicts", "note_send_results"]


def blocked_verdicts(
    conn: Connection, claimed: Sequence[ClaimedMessage], now: datetime
) -> list[Verdict]:
    """The claimed messages whose address is blocked: suppressed, with the reason (and fallback)."""
    return []


def note_send_results(conn: Connection, results: Sequence[SendResult], now: datetime) -> None:
    """Count permanent SMTP refusals (5xx) against their address; block past the threshold."""
