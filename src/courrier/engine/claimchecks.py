"""What a claimed batch goes through before it is sent, in the claim's transaction.

Each claimed message is held against what may have changed since it was
planned: its subject's state and the tenant's kinds (cancelled), the
recipient's preferences and the address's health (suppressed), whether the
original of a follow-up was read or answered (cancelled), and the rate
limits of its tenant and recipient domain (put back in the queue for later,
the attempt not counted). Each withdrawal is recorded with its reason and
told to the integrator's webhooks (suppressions only).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from courrier.domain.status import MessageStatus
from courrier.engine import followups, health
from courrier.engine.ratelimit import Deferral, rate_limited
from courrier.engine.results import SendResult
from courrier.engine.sendcheck import Verdict, stale_messages
from courrier.settings import Settings
from courrier.store import timeline, webhooks
from courrier.store.kinds import Catalogues
from courrier.store.queue import ClaimedMessage, Outcome, record_outcomes

__all__ = ["defer_limited", "result_events", "withdraw_stale"]

S = MessageStatus
#: what a recorded outcome tells the integrator's webhooks
RESULT_EVENTS = {S.SENT: "message.sent", S.FAILED: "message.failed"}


def withdraw_stale(
    conn: Connection,
    claimed: list[ClaimedMessage],
    now: datetime,
    worker_id: str,
    catalogues: Catalogues,
) -> list[ClaimedMessage]:
    """Withdraw what must not leave any more; the claimed messages that may go."""
    verdicts = stale_messages(conn, claimed, now=now, catalogues=catalogues)
    verdicts += followups.stale_follow_ups(conn, _without(claimed, verdicts))
    verdicts += health.blocked_verdicts(conn, _without(claimed, verdicts), now, catalogues)
    if not verdicts:
        return claimed
    _take_back(
        conn,
        [
            (
                Outcome(v.message_id, v.status, reason=v.reason, attempts_delta=-1),
                timeline.TimelineEntry(
                    message_id=v.message_id,
                    at=now,
                    status=v.status.value,
                    entry="checked",
                    reason=v.reason,
                ),
            )
            for v in verdicts
        ],
        worker_id,
        now,
    )
    webhooks.enqueue(conn, _verdict_events(claimed, verdicts), now)
    return _without(claimed, verdicts)


def _without(
    claimed: list[ClaimedMessage], taken: Sequence[Verdict | Deferral]
) -> list[ClaimedMessage]:
    if not taken:  # the usual case: nothing withdrawn, no pass over the batch
        return claimed
    withdrawn = {t.message_id for t in taken}
    return [message for message in claimed if message.id not in withdrawn]


def defer_limited(
    conn: Connection,
    claimed: list[ClaimedMessage],
    now: datetime,
    worker_id: str,
    settings: Settings,
) -> list[ClaimedMessage]:
    """Give back what is over a rate limit this minute; the claimed messages that may go."""
    deferrals = rate_limited(conn, claimed, now, settings)
    if not deferrals:
        return claimed
    _take_back(
        conn,
        [
            (
                Outcome(d.message_id, S.DUE, reason=d.reason, due_at=d.due_at, attempts_delta=-1),
                timeline.TimelineEntry(
                    message_id=d.message_id,
                    at=now,
                    status=S.DUE.value,
                    entry="rate_limited",
                    reason=d.reason,
                    data={"retry_at": d.due_at.isoformat()},
                ),
            )
            for d in deferrals
        ],
        worker_id,
        now,
    )
    return _without(claimed, deferrals)


def _take_back(
    conn: Connection,
    taken: Sequence[tuple[Outcome, timeline.TimelineEntry]],
    worker_id: str,
    now: datetime,
) -> None:
    """Record what the checks took out of the batch: each outcome (the attempt not
    counted) and its timeline entry."""
    record_outcomes(conn, [outcome for outcome, _ in taken], worker_id=worker_id, now=now)
    timeline.record(conn, [entry for _, entry in taken])


def _verdict_events(
    claimed: Sequence[ClaimedMessage], verdicts: Sequence[Verdict]
) -> list[webhooks.WebhookEvent]:
    """Webhook events for claimed messages suppressed at send time (cancelled ones tell nothing)."""
    rows = {message.id: message.row for message in claimed}
    return [
        webhooks.WebhookEvent(
            tenant_id=int(rows[v.message_id]["tenant_id"]),
            type="message.suppressed",
            message_id=v.message_id,
            data=_event_data(rows[v.message_id], v.status.value, v.reason),
        )
        for v in verdicts
        if v.status == S.SUPPRESSED and v.message_id in rows
    ]


def result_events(results: Sequence[SendResult]) -> list[webhooks.WebhookEvent]:
    """Webhook events for recorded outcomes: sent, failed."""
    return [
        webhooks.WebhookEvent(
            tenant_id=int(r.message.row["tenant_id"]),
            type=RESULT_EVENTS[r.outcome.status],
            message_id=r.message.id,
            data=_event_data(r.message.row, r.outcome.status.value, r.outcome.reason or r.reply),
        )
        for r in results
        if r.outcome.status in RESULT_EVENTS
    ]


def _event_data(row: dict[str, Any], status: str, reason: str | None) -> dict[str, Any]:
    return {
        "status": status,
        "reason": reason,
        "kind": row["kind"],
        "channel": row["channel"],
        "address": row["address"],
    }
