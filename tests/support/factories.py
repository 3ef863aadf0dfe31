"""Rows straight into the database for delivery tests: a tenant and N due messages.

The real way in is intake; these skip it so the dispatcher's tests need only
the queue's columns, and can make a thousand messages in a few statements.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, insert, select
from sqlalchemy.engine import Engine

from courrier.store.planning import insert_message_rows
from courrier.store.schema import message_contents, messages, tenants

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Courrier tests//EN\r\nMETHOD:REQUEST\r\n"
    "BEGIN:VEVENT\r\nUID:booking-1@courrier.test\r\nDTSTAMP:20260301T090000Z\r\n"
    "DTSTART:20260302T090000Z\r\nDTEND:20260302T100000Z\r\nSUMMARY:Flight DR400\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def insert_tenant(conn: Connection, *, now: datetime, name: str | None = None) -> int:
    """A tenant sending from club@courrier.test; its id."""
    result = conn.execute(
        insert(tenants)
        .values(
            name=name or f"club-{uuid.uuid4().hex[:8]}",
            from_email="club@courrier.test",
            from_name="Aéroclub du Lac",
            reply_to="office@courrier.test",
            created_at=now,
        )
        .returning(tenants.c.id)
    )
    return int(result.scalar_one())


def message_row(tenant_id: int, n: int, *, now: datetime, **overrides: Any) -> dict[str, Any]:
    """One due confirmation email, numbered ``n``, with an HTML part and an .ics file."""
    token = uuid.uuid4().hex
    row: dict[str, Any] = {
        "tenant_id": tenant_id,
        "kind": "booking.confirmation",
        "channel": "email",
        "address": f"member{n}@example.test",
        "to_name": f"Member {n}",
        "status": "due",
        "priority": 50,
        "due_at": now,
        "attempts": 0,
        "send_key": f"test:{token}",
        "message_id_header": f"<{token}@courrier.test>",
        "locale": "en",
        "from_addr": "club@courrier.test",
        "from_name": "Aéroclub du Lac",
        "reply_to": "office@courrier.test",
        "subject_line": f"Booking {n} confirmed",
        "body_text": f"Hello Member {n},\nyour booking is confirmed.\n",
        "body_html": f"<p>Hello Member {n},</p><p>your booking is confirmed.</p>",
        "attachments": [
            {
                "filename": "booking.ics",
                "content_type": "text/calendar",
                "content": ICS,
                "params": [["method", "REQUEST"]],
            }
        ],
        "created_at": now,
        "updated_at": now,
    }
    row.update(overrides)
    return row


def insert_messages(
    conn: Connection, tenant_id: int, count: int, *, now: datetime, **overrides: Any
) -> list[int]:
    """``count`` due messages in a few statements; their ids in insertion order."""
    rows = [message_row(tenant_id, n, now=now, **overrides) for n in range(count)]
    return insert_message_rows(conn, rows)


def insert_message(conn: Connection, row: dict[str, Any]) -> int:
    """One message row (with its bodies, as composed) written as Courrier stores it; its id."""
    [message_id] = insert_message_rows(conn, [row])
    return message_id


def seed(engine: Engine, count: int, *, now: datetime, **overrides: Any) -> list[int]:
    """A tenant and ``count`` due messages, committed; the message ids."""
    with engine.begin() as conn:
        tenant_id = insert_tenant(conn, now=now)
        return insert_messages(conn, tenant_id, count, now=now, **overrides)


def statuses(engine: Engine, ids: Sequence[int] | None = None) -> dict[str, int]:
    """How many messages are in each status (of ``ids``, or all)."""
    query = select(messages.c.status, func.count()).group_by(messages.c.status)
    if ids is not None:
        query = query.where(messages.c.id.in_(list(ids)))
    with engine.connect() as conn:
        return {str(status): int(n) for status, n in conn.execute(query)}


def message(engine: Engine, message_id: int) -> dict[str, Any]:
    """One message row as a dict, its bodies (``message_contents``) included."""
    with engine.connect() as conn:
        return dict(
            conn.execute(_with_contents().where(messages.c.id == message_id)).one()._mapping
        )


def all_messages(engine: Engine) -> list[dict[str, Any]]:
    """Every message row, oldest first, with its bodies."""
    with engine.connect() as conn:
        rows = conn.execute(_with_contents().order_by(messages.c.id))
        return [dict(row._mapping) for row in rows]


def _with_contents() -> Select[Any]:
    return select(messages, *(c for c in message_contents.c if c.name != "message_id")).select_from(
        messages.outerjoin(message_contents)
    )
