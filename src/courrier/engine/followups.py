"""Follow-ups of important messages: planned when the original leaves, stopped by a proven read.

An original carrying a policy (``messages.follow_up``, copied from its kind
or given with a direct message) gets its follow-ups planned in the very
transaction that records it as sent, so a crash cannot leave an original
sent without its reminders, nor plan them twice (each has its own send key,
``<original's key>:follow-up:<n>``). They wait as PLANNED rows, each due its
delay after the sending, and leave like any message.

What stops them: the recipient following the signed link to the original
(the tracking routes call :func:`stop_follow_ups` when the original becomes
accessed), or a reply filed in the inbox (the inbox calls it too). As a
safety net for whatever happened between, :func:`stale_follow_ups` checks
each claimed follow-up at send time against its original's status and the
replies received, and the dispatcher cancels those with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from courrier.domain.followup import policy_from_json
from courrier.domain.planning import bounded_key
from courrier.domain.status import MessageStatus
from courrier.engine.results import SendResult
from courrier.engine.sendcheck import Verdict
from courrier.errors import ValidationError
from courrier.render.followup_text import follow_up_text
from courrier.render.links import LinkSigner
from courrier.render.mime import new_message_id
from courrier.store import timeline
from courrier.store.planning import (
    PENDING,
    cancel_messages,
    existing_send_keys,
    insert_message_rows,
)
from courrier.store.queue import ClaimedMessage
from courrier.store.schema import inbound_mails, messages
from courrier.store.statements import chunks

__all__ = ["plan_follow_ups", "stale_follow_ups", "stop_follow_ups"]

log = logging.getLogger(__name__)
S = MessageStatus

#: columns a follow-up takes from its original as they are
COPIED = (
    "tenant_id",
    "event_id",
    "subject_id",
    "contact_id",
    "kind",
    "channel",
    "address",
    "priority",
    "locale",
    "from_addr",
    "from_name",
    "reply_to",
    "to_name",
)


def follow_up_key(original_key: str, n: int) -> str:
    """``<original's send key>:follow-up:<n>``, hashed like the planner's keys when too long."""
    return bounded_key(f"{original_key}:follow-up:{n}")


def _mail_domain(row: dict[str, Any]) -> str:
    """The domain of the original's Message-ID, so the follow-ups' look alike."""
    return (
        str(row["message_id_header"]).strip("<>").rpartition("@")[2]
        or str(row["from_addr"]).rpartition("@")[2]
    )


def _follow_up_rows(
    row: dict[str, Any], sent_at: datetime, signer: LinkSigner
) -> list[tuple[dict[str, Any], str]]:
    """The rows of an original's follow-ups, each with the reason its history starts with.

    None when the stored policy cannot be read (written by hand, or by an older rule).
    """
    try:
        policy = policy_from_json(row["follow_up"])
    except ValidationError as exc:
        log.warning("message %s: follow-up policy not usable (%s)", row["id"], exc.message)
        return []
    if policy is None:
        return []
    url = signer.original(int(row["id"]))
    total = len(policy.delays_minutes)
    rows = []
    for n, delay in enumerate(policy.delays_minutes, start=1):
        words = follow_up_text(
            str(row["locale"]),
            n,
            total,
            str(row["subject_line"]),
            str(row["body_text"]),
            row["body_html"],
            url,
        )
        reason = f"follow-up {n} of {total} of message {row['id']}"
        rows.append(
            (
                {
                    **{column: row[column] for column in COPIED},
                    "status": MessageStatus.PLANNED.value,
                    "due_at": sent_at + timedelta(minutes=delay),
                    "attempts": 0,
                    "send_key": follow_up_key(str(row["send_key"]), n),
                    "message_id_header": new_message_id(_mail_domain(row)),
                    "subject_line": words.subject,
                    "body_text": words.text,
                    "body_html": words.html,
                    "attachments": [],
                    "cc_addrs": (row.get("cc_addrs") or None) if policy.cc_bcc else None,
                    "bcc_addrs": (row.get("bcc_addrs") or None) if policy.cc_bcc else None,
                    "follow_up": None,
                    "follow_up_of": int(row["id"]),
                    "follow_up_index": n,
                    "created_at": sent_at,
                    "updated_at": sent_at,
                },
                reason,
            )
        )
    return rows


def plan_follow_ups(
    conn: Connection,
    results: Sequence[SendResult],
    now: datetime,
    *,
    signer: LinkSigner,
) -> int:
    """Plan the follow-ups of the originals just sent that carry a policy; how many planned.

    ``signer`` (the worker's) makes the link to the original in each follow-up.
    """
    rows: list[tuple[dict[str, Any], str]] = []
    for result in results:
        row = result.message.row
        if result.outcome.status is not MessageStatus.SENT or not row.get("follow_up"):
            continue
        if row.get("follow_up_of") is not None:
            continue  # a follow-up has none of its own
        rows += _follow_up_rows(row, result.outcome.sent_at or now, signer)
    if not rows:
        return 0
    by_tenant: dict[int, list[tuple[dict[str, Any], str]]] = {}
    for row, reason in rows:
        by_tenant.setdefault(int(row["tenant_id"]), []).append((row, reason))
    planned = 0
    for tenant_id, tenant_rows in by_tenant.items():
        taken = existing_send_keys(conn, tenant_id, (r["send_key"] for r, _ in tenant_rows))
        fresh = [(r, why) for r, why in tenant_rows if r["send_key"] not in taken]  # a re-run
        if not fresh:
            continue
        ids = insert_message_rows(conn, [r for r, _ in fresh])
        planned += len(fresh)
        _record_planned(conn, fresh, ids)
    return planned


def _record_planned(
    conn: Connection, rows: Sequence[tuple[dict[str, Any], str]], ids: Sequence[int]
) -> None:
    """The "planned" timeline entry of each new follow-up, saying whose follow-up it is."""
    timeline.record(
        conn,
        (
            timeline.TimelineEntry(
                message_id=message_id,
                at=r["created_at"],
                status=MessageStatus.PLANNED.value,
                entry="planned",
                reason=reason,
                data={"due_at": r["due_at"].isoformat(), "send_key": r["send_key"]},
            )
            for message_id, (r, reason) in zip(ids, rows, strict=True)
        ),
    )


def stop_follow_ups(
    conn: Connection, original_ids: Sequence[int], reason: str, now: datetime
) -> int:
    """Cancel the follow-ups not yet sent of these originals, with ``reason``; how many.

    Called in the transaction that records the read (the original's page
    opened) or the reply; follow-ups already sent or being sent stay as they are.
    """
    wanted = sorted(set(original_ids))
    found: list[int] = []
    for part in chunks(wanted):
        query = select(messages.c.id).where(
            messages.c.follow_up_of.in_(part),
            messages.c.status.in_(PENDING),
        )
        found += conn.execute(query).scalars()
    cancel_messages(conn, [(i, reason) for i in found], now=now)
    return len(found)


def stale_follow_ups(conn: Connection, claimed: Sequence[ClaimedMessage]) -> list[Verdict]:
    """Claimed follow-ups whose original was accessed, answered or bounced meanwhile: cancelled.

    A reply to the original or to any of its follow-ups counts (a recipient
    often answers the reminder). Two queries for the whole batch.
    """
    follow_ups = [m for m in claimed if m.row.get("follow_up_of") is not None]
    if not follow_ups:
        return []
    originals = sorted({int(m.row["follow_up_of"]) for m in follow_ups})
    ended = dict(
        conn.execute(
            select(messages.c.id, messages.c.status).where(
                messages.c.id.in_(originals),
                messages.c.status.in_([S.ACCESSED.value, S.BOUNCED.value]),
            )
        ).all()
    )
    thread = func.coalesce(messages.c.follow_up_of, messages.c.id)
    answered = set(
        conn.execute(
            select(thread)
            .select_from(
                inbound_mails.join(messages, messages.c.id == inbound_mails.c.reply_to_message_id)
            )
            .where(thread.in_(originals), inbound_mails.c.kind == "member")
            .distinct()
        ).scalars()
    )
    verdicts = []
    for message in follow_ups:
        original = int(message.row["follow_up_of"])
        if ended.get(original) == S.ACCESSED.value:
            reason = f"the original (message {original}) was read: its link was followed"
        elif ended.get(original) == S.BOUNCED.value:
            reason = f"the original (message {original}) bounced: a reminder would too"
        elif original in answered:
            reason = f"a reply to the original (message {original}) arrived"
        else:
            continue
        verdicts.append(Verdict(message.id, MessageStatus.CANCELLED, reason))
    return verdicts
