"""What one send attempt gave, and what the dispatcher records for it.

:class:`Attempt` is a mail's fate as the send threads saw it (sent,
refused or failed, or not offered); :func:`decide` turns it into the
message's next status and its timeline entry: sent, failed, released back
to the queue, or a retry after a growing, jittered delay.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from courrier.channels.smtp_transaction import Accepted
from courrier.domain.retry import retry_delay
from courrier.domain.status import MessageStatus
from courrier.engine import health
from courrier.engine.results import Refused
from courrier.errors import DeliveryError, PermanentDeliveryError
from courrier.settings import Settings
from courrier.store import timeline
from courrier.store.queue import ClaimedMessage, Outcome

__all__ = ["Attempt", "attempt_of", "decide"]

S = MessageStatus


@dataclass(frozen=True)
class Attempt:
    """What one send attempt gave: sent, transient, permanent, or not started (release)."""

    kind: Literal["sent", "transient", "permanent", "release"]
    reply: str = ""
    code: int | None = None
    refused: tuple[Refused, ...] = ()  # sent: the recipients the server refused meanwhile


def attempt_of(result: Accepted | DeliveryError | None) -> Attempt:
    """What one mail of a group became: sent, refused or failed, or not offered (released)."""
    if result is None:
        return Attempt("release")
    if isinstance(result, DeliveryError):
        kind: Literal["transient", "permanent"] = (
            "permanent" if isinstance(result, PermanentDeliveryError) else "transient"
        )
        return Attempt(kind, result.reply, result.code)
    refused = tuple(
        Refused(address, error.code, error.reply, isinstance(error, PermanentDeliveryError))
        for address, error in result.refused
    )
    return Attempt("sent", result.reply, refused=refused)


def decide(
    message: ClaimedMessage,
    attempt: Attempt,
    now: datetime,
    worker_id: str,
    settings: Settings,
    rng: random.Random,
    shared: dict[int, dict[str, Any]] | None = None,
) -> tuple[Outcome, timeline.TimelineEntry]:
    """The outcome and timeline entry for one attempt.

    ``shared``: the batch's data dicts of plain entries (a mail sent to all
    its recipients, or released) by attempt number. Such entries share one
    dict, never changed afterwards, so the batch's insert encodes its JSON
    once; the entries that say more get their own.
    """
    n = message.attempts
    plain = attempt.kind in ("sent", "release") and attempt.code is None and not attempt.refused
    data: dict[str, Any] | None = shared.get(n) if plain and shared is not None else None
    if data is None:
        data = {"worker": worker_id, "attempt": n}
        if plain and shared is not None:
            shared[n] = data
    if attempt.code is not None:
        data["code"] = attempt.code
        enhanced = health.enhanced_status(attempt.reply)
        if enhanced is not None:
            data["status"] = enhanced  # RFC 3463, e.g. 5.1.1 or 4.2.2
    reply = f"{attempt.code} {attempt.reply}" if attempt.code else attempt.reply

    def entry(status: MessageStatus, name: str, reason: str | None) -> timeline.TimelineEntry:
        return timeline.TimelineEntry(
            message_id=message.id,
            at=now,
            status=status.value,
            entry=name,
            reason=reason,
            data=data,
        )

    if attempt.kind == "sent":
        if attempt.refused:  # the mail left, but not to everyone
            data["refused"] = [
                {"address": r.address, "code": r.code, "reply": r.reply} for r in attempt.refused
            ]
        return Outcome(message.id, S.SENT, sent_at=now), entry(S.SENT, "sent", attempt.reply)
    if attempt.kind == "release":
        outcome = Outcome(message.id, S.DUE, attempts_delta=-1)
        return outcome, entry(S.DUE, "released", "worker stopping; not sent, back in the queue")
    if attempt.kind == "permanent":
        return Outcome(message.id, S.FAILED, reason=reply), entry(S.FAILED, "failed", reply)
    if n >= settings.max_attempts:
        reason = f"gave up after {n} attempts: {reply}"
        return Outcome(message.id, S.FAILED, reason=reason), entry(S.FAILED, "failed", reason)
    retry_at = now + retry_delay(
        n,
        base_seconds=settings.retry_base_seconds,
        max_seconds=settings.retry_max_seconds,
        rng=rng,
    )
    data["retry_at"] = retry_at.isoformat()
    return Outcome(message.id, S.DUE, reason=reply, due_at=retry_at), entry(S.DUE, "retry", reply)
