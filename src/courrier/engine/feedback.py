"""Applying what the inbox learnt: bounces, replies and mail from an address.

The inbox reader files every mail and its bounce reports as it reads them;
this loop then turns them into consequences, once each (``feedback_at``):
a failed recipient bounces its message and counts against its address, a
delay is noted but not counted, a delivery report moves the message on,
and mail written by a person proves the address alive (its count restarts)
and, answering a message, stops that message's follow-ups. Auto-replies
prove nothing and change nothing.

A bounce is tied to its message by the VERP token of the address it came
back to (signed, so only Courrier's own), else by the original Message-ID
found at filing, else by the latest message sent to the failed address.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, desc, select, update
from sqlalchemy.engine import Engine

from courrier.clock import Clock, utcnow
from courrier.domain.status import MessageStatus, can_move
from courrier.engine import followups
from courrier.render.links import LinkSigner
from courrier.settings import Settings
from courrier.store import health, timeline, webhooks
from courrier.store.inbound import mark_bounces_applied
from courrier.store.schema import bounce_reports, inbound_mails, messages

__all__ = ["FeedbackLoop", "apply_mails"]

#: inbound mails applied in one transaction
BATCH = 200
S = MessageStatus
CODE = re.compile(r"\b([245]\d\d)\b")
#: statuses of a message that has left (a bounce may be about it)
LEFT = [s.value for s in (S.SENT, S.DELIVERED, S.OPENED, S.CLICKED, S.ACCESSED, S.BOUNCED)]


class FeedbackLoop:
    """Applies filed inbound mails not applied yet; ``run`` loops until ``stop``."""

    def __init__(self, engine: Engine, settings: Settings, *, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self._signer: LinkSigner | None = None

    def run_once(self) -> int:
        """Apply one batch; how many inbound mails it applied."""
        if self._signer is None:
            self._signer = LinkSigner(self.settings.signing_key(), self.settings.base_url)
        now = self.clock()
        with self.engine.begin() as conn:
            query = (
                select(inbound_mails)
                .where(inbound_mails.c.feedback_at.is_(None))
                .order_by(inbound_mails.c.id)
                .limit(BATCH)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            mails = [dict(r._mapping) for r in conn.execute(query)]
            if not mails:
                return 0
            apply_mails(conn, mails, self._signer, now)
            conn.execute(
                update(inbound_mails)
                .where(inbound_mails.c.id.in_([m["id"] for m in mails]))
                .values(feedback_at=now)
            )
        return len(mails)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self.run_once():
                stop.wait(self.settings.poll_seconds)


def apply_mails(
    conn: Connection, mails: Sequence[dict[str, Any]], signer: LinkSigner, now: datetime
) -> None:
    """What each filed mail means, in the caller's transaction."""
    bounces = [m for m in mails if m["kind"] == "bounce"]
    if bounces:
        _Bounces(conn, signer, now).apply(bounces)
    replied: set[int] = set()
    for mail in mails:
        if mail["kind"] != "member":
            continue  # auto-replies prove nothing about the address
        if mail["from_addr"]:
            health.reset_on_mail(conn, int(mail["tenant_id"]), [mail["from_addr"]], now)
        if mail["reply_to_message_id"] is not None:
            replied.add(int(mail["reply_to_message_id"]))
    if replied:
        # a reply to a follow-up answers its original too: the later follow-ups stop as well
        query = select(messages.c.follow_up_of).where(
            messages.c.id.in_(sorted(replied)), messages.c.follow_up_of.is_not(None)
        )
        replied.update(int(i) for i in conn.execute(query).scalars())
        followups.stop_follow_ups(conn, sorted(replied), "a reply was received", now)


class _Bounces:
    """The bounce reports of a batch of bounce mails, applied to messages and addresses."""

    def __init__(self, conn: Connection, signer: LinkSigner, now: datetime) -> None:
        self.conn, self.signer, self.now = conn, signer, now
        self.rows: dict[int, dict[str, Any]] = {}  # messages seen, with their current status
        self.entries: list[timeline.TimelineEntry] = []
        self.events: list[webhooks.WebhookEvent] = []
        self.errors: list[health.AddressError] = []

    def apply(self, mails: Sequence[dict[str, Any]]) -> None:
        by_mail: dict[int, list[dict[str, Any]]] = {}
        query = (
            select(bounce_reports)
            .where(
                bounce_reports.c.inbound_mail_id.in_([m["id"] for m in mails]),
                bounce_reports.c.applied_at.is_(None),
            )
            .order_by(bounce_reports.c.id)
        )
        for row in self.conn.execute(query):
            by_mail.setdefault(int(row.inbound_mail_id), []).append(dict(row._mapping))
        for mail in mails:
            tenant_id = int(mail["tenant_id"])
            verp = self._verp_message(tenant_id, mail["to_addrs"] or [])
            for report in by_mail.get(int(mail["id"]), []):
                self._one(tenant_id, mail["id"], report, verp)
        health.record_errors(self.conn, self.errors, self.now)
        timeline.record(self.conn, self.entries)
        webhooks.enqueue(self.conn, self.events, self.now)
        applied = [r["id"] for reports in by_mail.values() for r in reports]
        mark_bounces_applied(self.conn, applied, now=self.now)

    def _message(self, tenant_id: int, message_id: int | None) -> dict[str, Any] | None:
        if message_id is None:
            return None
        if message_id not in self.rows:
            row = self.conn.execute(
                select(messages.c.id, messages.c.tenant_id, messages.c.status, messages.c.kind)
                .add_columns(messages.c.channel, messages.c.address)
                .where(messages.c.id == message_id)
            ).first()
            if row is None:
                return None
            self.rows[message_id] = dict(row._mapping)
        found = self.rows[message_id]
        return found if int(found["tenant_id"]) == tenant_id else None

    def _verp_message(self, tenant_id: int, to_addrs: Sequence[str]) -> dict[str, Any] | None:
        """The message a ``bounces+<token>@...`` address names, if genuine and the tenant's."""
        for address in to_addrs:
            local = str(address).partition("@")[0]
            if local.lower().startswith("bounces+"):
                message_id = self.signer.verp_message_id(local.partition("+")[2])
                found = self._message(tenant_id, message_id)
                if found is not None:
                    return found
        return None

    def _latest_to(self, tenant_id: int, address: str) -> dict[str, Any] | None:
        query = (
            select(messages.c.id)
            .where(
                messages.c.tenant_id == tenant_id,
                messages.c.address == address,
                messages.c.status.in_(LEFT),
            )
            .order_by(desc(messages.c.sent_at), desc(messages.c.id))
            .limit(1)
        )
        return self._message(tenant_id, self.conn.execute(query).scalar())

    def _one(
        self,
        tenant_id: int,
        mail_id: int,
        report: dict[str, Any],
        verp: dict[str, Any] | None,
    ) -> None:
        recipient = health.normalise(str(report["recipient"]))
        message = (
            verp
            or self._message(tenant_id, report["message_id"])
            or self._latest_to(tenant_id, recipient)
        )
        action = (report["action"] or "").lower()
        diagnostic = report["diagnostic"]
        found = CODE.search(diagnostic or "")
        error = health.AddressError(
            tenant_id=tenant_id,
            address=recipient,
            source="dsn",
            code=int(found.group(1)) if found else None,
            status=report["status"],
            text=diagnostic,
            message_id=message["id"] if message else None,
            counted=action == "failed",
        )
        data = {"recipient": recipient, "status": report["status"], "inbound_mail_id": mail_id}
        reason = " ".join(p for p in (report["status"], diagnostic) if p) or None
        if action == "failed":
            self.errors.append(error)
            if message is not None:
                self._note(message, recipient, S.BOUNCED, "bounced", reason, data)
        elif action == "delayed":
            self.errors.append(error)
            if message is not None:
                self._note(message, recipient, None, "delayed", reason, data)
        elif action in ("delivered", "relayed") and message is not None:
            self._note(message, recipient, S.DELIVERED, "delivered", reason, data)

    def _note(
        self,
        message: dict[str, Any],
        recipient: str,
        new: MessageStatus | None,
        entry: str,
        reason: str | None,
        data: dict[str, Any],
    ) -> None:
        """A timeline entry, and the move to ``new`` when allowed and about the message's address."""
        current = MessageStatus(message["status"])
        moved = (
            new is not None
            and recipient == health.normalise(str(message["address"]))
            and can_move(current, new)
            and self._move(message, current, new, reason)
        )
        status = new if moved and new is not None else current
        self.entries.append(
            timeline.TimelineEntry(
                message_id=int(message["id"]),
                at=self.now,
                status=status.value,
                entry=entry,
                reason=reason,
                data=data,
            )
        )
        if moved and new is not None:
            self.events.append(
                webhooks.WebhookEvent(
                    tenant_id=int(message["tenant_id"]),
                    type=f"message.{new.value}",
                    message_id=int(message["id"]),
                    data={
                        "status": new.value,
                        "reason": reason,
                        "kind": message["kind"],
                        "channel": message["channel"],
                        "address": message["address"],
                    },
                )
            )

    def _move(
        self,
        message: dict[str, Any],
        current: MessageStatus,
        new: MessageStatus,
        reason: str | None,
    ) -> bool:
        result = self.conn.execute(
            update(messages)
            .where(messages.c.id == message["id"], messages.c.status == current.value)
            .values(status=new.value, status_reason=reason, updated_at=self.now)
        )
        if result.rowcount != 1:
            return False
        message["status"] = new.value
        return True
