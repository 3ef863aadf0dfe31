"""What a recipient did with a message: opened, clicked, read the original, downloaded.

The tracking routes call :func:`record_interaction` in one transaction per
hit. Each hit is a timeline entry (with the user agent and, for a click, the
URL), so the history shows every open and click. The message's status only
moves forward along sent → delivered → opened → clicked → accessed (see
:mod:`courrier.domain.status`): a late open after a click leaves it clicked,
and the entry is still written. A status change is told to the tenant's
webhooks in the same transaction.

Opens are a weak signal (mail clients and scanners load pixels on their
own); following the signed link to the original is the proof of a read, and
it stops the message's follow-ups.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from courrier.domain.status import MessageStatus, can_move
from courrier.engine.followups import stop_follow_ups
from courrier.store import timeline, webhooks
from courrier.store.schema import messages

__all__ = ["INTERACTIONS", "record_interaction"]

S = MessageStatus
#: what each interaction moves the status to (a download counts as a click)
INTERACTIONS = {
    "opened": S.OPENED,
    "clicked": S.CLICKED,
    "accessed": S.ACCESSED,
    "downloaded": S.CLICKED,
}
#: the most a user agent string keeps in the timeline
MAX_USER_AGENT = 500


def record_interaction(
    conn: Connection,
    message_id: int,
    what: str,
    user_agent: str | None,
    now: datetime,
    url: str | None = None,
) -> bool:
    """Record one hit on a message's tracking link; False when the message does not exist."""
    target = INTERACTIONS[what]
    row = conn.execute(
        select(
            messages.c.id,
            messages.c.tenant_id,
            messages.c.status,
            messages.c.kind,
            messages.c.channel,
            messages.c.address,
            messages.c.follow_up_of,
        )
        .where(messages.c.id == message_id)
        .with_for_update()
    ).first()
    if row is None:
        return False
    current = MessageStatus(row.status)
    moved = can_move(current, target) and _move(conn, message_id, current, target, now)
    data: dict[str, Any] = {"user_agent": (user_agent or "")[:MAX_USER_AGENT] or None}
    if url is not None:
        data["url"] = url
    status = target if moved else current
    timeline.record(
        conn,
        [
            timeline.TimelineEntry(
                message_id=message_id, at=now, status=status.value, entry=what, data=data
            )
        ],
    )
    if moved:
        event = webhooks.WebhookEvent(
            tenant_id=int(row.tenant_id),
            type=f"message.{target.value}",
            message_id=message_id,
            data={
                "status": target.value,
                "reason": None,
                "kind": row.kind,
                "channel": row.channel,
                "address": row.address,
                "user_agent": data["user_agent"],
                **({"url": url} if url is not None else {}),
            },
        )
        webhooks.enqueue(conn, [event], now)
    if what == "accessed":
        original = int(row.follow_up_of) if row.follow_up_of is not None else message_id
        stop_follow_ups(conn, [original], "the original was accessed", now)
    return True


def _move(
    conn: Connection, message_id: int, current: MessageStatus, target: MessageStatus, now: datetime
) -> bool:
    """Move the status if nobody moved it meanwhile; whether it moved."""
    result = conn.execute(
        update(messages)
        .where(messages.c.id == message_id, messages.c.status == current.value)
        .values(status=target.value, updated_at=now)
    )
    return result.rowcount == 1
