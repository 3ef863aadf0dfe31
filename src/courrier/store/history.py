"""Reading the history: messages of a tenant with their filters and pages, captured mails.

Everything here is scoped to one tenant, so a caller cannot read another
tenant's rows by id. Pages run newest first on the row id, which only grows;
the caller passes the last id it saw to get the next page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, or_, select

from courrier.store.schema import captured_mails, contacts, message_contents, messages, subjects

#: Columns of a message shown in lists (the content is left out).
SUMMARY_COLUMNS = (
    messages.c.id,
    messages.c.kind,
    messages.c.channel,
    messages.c.address,
    messages.c.status,
    messages.c.status_reason,
    messages.c.priority,
    messages.c.attempts,
    messages.c.subject_line,
    messages.c.due_at,
    messages.c.created_at,
    messages.c.updated_at,
    messages.c.sent_at,
    subjects.c.type.label("subject_type"),
    subjects.c.external_id.label("subject_id"),
    contacts.c.external_id.label("contact"),
)

#: Columns added for one message: its rendered content.
CONTENT_COLUMNS = (
    messages.c.event_id,
    messages.c.message_id_header,
    messages.c.locale,
    messages.c.from_addr,
    messages.c.from_name,
    messages.c.reply_to,
    messages.c.to_name,
    message_contents.c.body_text,
    message_contents.c.body_html,
    message_contents.c.attachments,
    messages.c.cc_addrs,
    messages.c.bcc_addrs,
    messages.c.follow_up,
    messages.c.follow_up_of,
    messages.c.follow_up_index,
)


@dataclass(frozen=True)
class MessageFilter:
    """What a history query may narrow on; None means "any"."""

    subject_type: str | None = None
    subject_id: str | None = None
    contact: str | None = None
    status: str | None = None
    kind: str | None = None
    channel: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None


def _with_joins(query: Select[Any]) -> Select[Any]:
    return query.select_from(
        messages.outerjoin(subjects, subjects.c.id == messages.c.subject_id).outerjoin(
            contacts, contacts.c.id == messages.c.contact_id
        )
    )


def _like_pattern(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _narrowed(query: Select[Any], wanted: MessageFilter) -> Select[Any]:
    exact = {
        subjects.c.type: wanted.subject_type,
        subjects.c.external_id: wanted.subject_id,
        contacts.c.external_id: wanted.contact,
        messages.c.status: wanted.status,
        messages.c.kind: wanted.kind,
        messages.c.channel: wanted.channel,
    }
    for column, value in exact.items():
        if value is not None:
            query = query.where(column == value)
    if wanted.since is not None:
        query = query.where(messages.c.created_at >= wanted.since)
    if wanted.until is not None:
        query = query.where(messages.c.created_at < wanted.until)
    if wanted.text:
        pattern = _like_pattern(wanted.text)
        query = query.where(
            or_(
                func.lower(messages.c.subject_line).like(pattern, escape="\\"),
                func.lower(messages.c.address).like(pattern, escape="\\"),
            )
        )
    return query


def list_messages(
    conn: Connection,
    tenant_id: int,
    wanted: MessageFilter,
    *,
    limit: int,
    before_id: int | None = None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` matching messages of the tenant, newest first, older than ``before_id``."""
    query = _with_joins(select(*SUMMARY_COLUMNS)).where(messages.c.tenant_id == tenant_id)
    query = _narrowed(query, wanted)
    if before_id is not None:
        query = query.where(messages.c.id < before_id)
    query = query.order_by(messages.c.id.desc()).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def get_message(conn: Connection, tenant_id: int, message_id: int) -> dict[str, Any] | None:
    """One message of the tenant with its content, or None (also for another tenant's id)."""
    query = (
        _with_joins(select(*SUMMARY_COLUMNS, *CONTENT_COLUMNS))
        .outerjoin(message_contents, message_contents.c.message_id == messages.c.id)
        .where(messages.c.tenant_id == tenant_id, messages.c.id == message_id)
    )
    row = conn.execute(query).first()
    return dict(row._mapping) if row is not None else None


def follow_ups_of(conn: Connection, tenant_id: int, message_id: int) -> list[dict[str, Any]]:
    """The follow-ups planned for a message, first one first."""
    query = (
        select(
            messages.c.id,
            messages.c.follow_up_index,
            messages.c.status,
            messages.c.status_reason,
            messages.c.due_at,
            messages.c.sent_at,
        )
        .where(messages.c.tenant_id == tenant_id, messages.c.follow_up_of == message_id)
        .order_by(messages.c.follow_up_index, messages.c.id)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def count_by_status(conn: Connection) -> dict[str, int]:
    """How many messages are in each status, across tenants (for /metrics)."""
    query = select(messages.c.status, func.count()).group_by(messages.c.status)
    return {status: count for status, count in conn.execute(query)}


def _captured_of(tenant_id: int | None) -> Any:
    """Captured mails of a tenant: stamped with it, or carrying one of its Message-IDs."""
    if tenant_id is None:
        return True
    own_ids = select(messages.c.message_id_header).where(messages.c.tenant_id == tenant_id)
    return or_(
        captured_mails.c.tenant_id == tenant_id,
        (captured_mails.c.tenant_id.is_(None)) & captured_mails.c.message_id_header.in_(own_ids),
    )


def list_captured(
    conn: Connection, tenant_id: int | None, *, limit: int, before_id: int | None = None
) -> list[dict[str, Any]]:
    """Captured mails, newest first, without raw bytes; ``tenant_id=None``: every tenant's."""
    query = (
        select(
            captured_mails.c.id,
            captured_mails.c.tenant_id,
            captured_mails.c.message_id_header,
            captured_mails.c.envelope_from,
            captured_mails.c.recipients,
            captured_mails.c.subject_line,
            captured_mails.c.received_at,
        )
        .where(_captured_of(tenant_id))
        .order_by(captured_mails.c.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(captured_mails.c.id < before_id)
    return [dict(row._mapping) for row in conn.execute(query)]


def get_captured(
    conn: Connection, tenant_id: int | None, captured_id: int
) -> dict[str, Any] | None:
    """One captured mail with its raw bytes, or None when it is not this tenant's."""
    query = select(captured_mails).where(
        captured_mails.c.id == captured_id, _captured_of(tenant_id)
    )
    row = conn.execute(query).first()
    return dict(row._mapping) if row is not None else None
