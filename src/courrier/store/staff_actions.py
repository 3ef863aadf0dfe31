"""Staff actions on one message: send again one that ended, withdraw one still waiting.

Each is one conditional ``UPDATE`` checked by its row count, so it is safe
against a worker claiming the same row at the same moment: on PostgreSQL
the update waits for the claim's row lock and re-reads the row (READ
COMMITTED re-checks the ``WHERE`` on the version the claim committed); on
SQLite the engine's ``BEGIN IMMEDIATE`` keeps the claim and the update
apart. Whoever comes second finds the status changed and does nothing.

Who acted and why go to the message's timeline (``data.by``, ``reason``)
and to its status reason, so the history says it as any other step.

These moves are the staff moves of :mod:`courrier.domain.status`
(``STAFF_MOVES``), outside the engine's table, which keeps failed, bounced
and suppressed final: only a person may put an ended message back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from courrier.domain.status import STAFF_MOVES, MessageStatus
from courrier.store import timeline
from courrier.store.schema import messages

__all__ = ["CANCELLABLE", "REQUEUEABLE", "WITHDRAWN_BY", "cancel", "find", "requeue"]

m = messages
S = MessageStatus

#: How a staff cancel's status reason starts: the planner never revives these
#: (:func:`courrier.store.planning.cancelled_send_keys`), where the engine's own
#: cancels ("cancelled by booking.cancelled") may be planned again.
WITHDRAWN_BY = "withdrawn by "
#: Ended without reaching the recipient: staff may send these again.
REQUEUEABLE: frozenset[MessageStatus] = frozenset(s for s, to in STAFF_MOVES.items() if S.DUE in to)
#: Still waiting for a worker: staff may withdraw these.
CANCELLABLE: frozenset[MessageStatus] = frozenset(
    s for s, to in STAFF_MOVES.items() if S.CANCELLED in to
)


def find(conn: Connection, tenant_id: int, message_id: int) -> dict[str, Any] | None:
    """The message row of this tenant, or None (another tenant's message is not there)."""
    row = conn.execute(select(m).where(m.c.id == message_id, m.c.tenant_id == tenant_id)).first()
    return dict(row._mapping) if row is not None else None


def requeue(
    conn: Connection,
    tenant_id: int,
    message_id: int,
    *,
    was: MessageStatus,
    actor: str,
    reason: str,
    now: datetime,
) -> bool:
    """Put an ended message back in the queue, due now, as the same mail; False if it moved.

    ``was`` is the status the caller read: the update happens only while the
    message is still in it. Attempts start again from 0; the lease, the
    sending time and the old reason are cleared; the Message-ID stays.
    """
    if was not in REQUEUEABLE:
        raise ValueError(f"a {was} message cannot be requeued")
    done = conn.execute(
        update(m)
        .where(m.c.id == message_id, m.c.tenant_id == tenant_id, m.c.status == was.value)
        .values(
            status=S.DUE.value,
            status_reason=f"requeued by {actor}: {reason}",
            due_at=now,
            attempts=0,
            lease_owner=None,
            lease_until=None,
            sent_at=None,
            updated_at=now,
        )
    )
    entry = timeline.TimelineEntry(
        message_id=message_id,
        at=now,
        status=S.DUE.value,
        entry="requeued",
        reason=reason,
        data={"by": actor, "was": was.value},
    )
    return _noted(conn, done.rowcount, entry)


def cancel(
    conn: Connection, tenant_id: int, message_id: int, *, actor: str, reason: str, now: datetime
) -> bool:
    """Withdraw a message still waiting (planned or due, no lease held); False if it was not.

    A worker that claimed it first holds it in ``sending`` with a lease, so
    the update finds nothing; a worker claiming after finds it cancelled.
    """
    done = conn.execute(
        update(m)
        .where(
            m.c.id == message_id,
            m.c.tenant_id == tenant_id,
            m.c.status.in_([s.value for s in CANCELLABLE]),
            m.c.lease_owner.is_(None),
        )
        .values(
            status=S.CANCELLED.value,
            status_reason=f"{WITHDRAWN_BY}{actor}: {reason}",
            updated_at=now,
        )
    )
    entry = timeline.TimelineEntry(
        message_id=message_id,
        at=now,
        status=S.CANCELLED.value,
        entry="cancelled",
        reason=reason,
        data={"by": actor},
    )
    return _noted(conn, done.rowcount, entry)


def _noted(conn: Connection, changed: int, entry: timeline.TimelineEntry) -> bool:
    """Whether the conditional update changed the message; if it did, its timeline entry."""
    if changed != 1:
        return False
    timeline.record(conn, [entry])
    return True
