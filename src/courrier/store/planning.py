"""Storing planned messages: in batches, each under its unique send key, with its timeline.

A send key already present means the message was planned before (by another
event, or a racing request): it is not planned again. Pending messages of a
subject can be read (locked), moved and cancelled here when it changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select, update

from courrier.domain.status import MessageStatus
from courrier.store import timeline
from courrier.store.bulk import insert_numbered_rows, insert_rows
from courrier.store.schema import message_contents, messages
from courrier.store.staff_actions import WITHDRAWN_BY
from courrier.store.statements import Prepared, array, chunks, in_array

#: a tenant's messages among some send keys
_BY_SEND_KEYS = Prepared(
    lambda dialect: select(messages.c.send_key, messages.c.id).where(
        messages.c.tenant_id == bindparam("tenant"),
        in_array(dialect, messages.c.send_key, "keys"),
    )
)


def existing_send_keys(conn: Connection, tenant_id: int, keys: Iterable[str]) -> set[str]:
    """Those of ``keys`` the tenant already has a message for."""
    return set(_ids_by_send_key(conn, tenant_id, sorted(set(keys))))


def cancelled_send_keys(conn: Connection, tenant_id: int, keys: Iterable[str]) -> set[str]:
    """Those of ``keys`` whose message was cancelled (never sent): a reminder may be planned again.

    Not those staff withdrew by hand: a booking change keeping the date must
    not bring back a reminder a person decided against.
    """
    wanted = sorted(set(keys))
    found: set[str] = set()
    for part in chunks(wanted):
        query = select(messages.c.send_key).where(
            messages.c.tenant_id == tenant_id,
            messages.c.send_key.in_(part),
            messages.c.status == MessageStatus.CANCELLED.value,
            or_(
                messages.c.status_reason.is_(None),
                ~messages.c.status_reason.startswith(WITHDRAWN_BY, autoescape=True),
            ),
        )
        found.update(conn.execute(query).scalars())
    return found


def _ids_by_send_key(conn: Connection, tenant_id: int, keys: Sequence[str]) -> dict[str, int]:
    """The ids of the tenant's messages among ``keys``, by send key."""
    found: dict[str, int] = {}
    for part in chunks(keys):
        params = {"tenant": tenant_id, "keys": array(conn, part)}
        found.update(
            (key, message_id) for key, message_id in conn.execute(_BY_SEND_KEYS(conn), params)
        )
    return found


#: a row key (not a column) naming channels of the kind that could not be used
UNAVAILABLE = "unavailable_channels"


def _planned_data(row: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"due_at": row["due_at"].isoformat(), "send_key": row["send_key"]}
    if row.get(UNAVAILABLE):
        data[UNAVAILABLE] = list(row[UNAVAILABLE])
    return data


#: what a message row as composed holds beside its ``messages`` columns: its bodies (stored in
#: ``message_contents``) and the channels it could not use (said in its first timeline entry)
CONTENT_COLUMNS = ("body_text", "body_html", "attachments")
NOT_IN_ROW = frozenset({*CONTENT_COLUMNS, UNAVAILABLE})


def row_columns(row: Mapping[str, Any]) -> dict[str, Any]:
    """A composed message row without what is not a ``messages`` column (see :data:`NOT_IN_ROW`)."""
    return {k: v for k, v in row.items() if k not in NOT_IN_ROW}


def contents_of(message_id: int, row: Mapping[str, Any]) -> dict[str, Any]:
    """The ``message_contents`` row of a composed message: its bodies."""
    return {
        "message_id": message_id,
        "body_text": row["body_text"],
        "body_html": row.get("body_html"),
        "attachments": row.get("attachments") or [],
    }


def insert_message_rows(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Add one tenant's message rows as composed and their bodies; the ids in row order.

    One bulk insert for the messages (``COPY`` on PostgreSQL, see
    :mod:`courrier.store.bulk`; faster than INSERT ... RETURNING), which
    gives their ids back (else one query for them by send key), one insert
    for their bodies (``message_contents``).
    """
    if not rows:
        return []
    numbered = insert_numbered_rows(conn, messages, [row_columns(r) for r in rows])
    if numbered is None:
        by_key = _ids_by_send_key(conn, rows[0]["tenant_id"], [row["send_key"] for row in rows])
        ids = [by_key[row["send_key"]] for row in rows]
    else:
        ids = list(numbered)
    insert_rows(
        conn, message_contents, [contents_of(i, row) for i, row in zip(ids, rows, strict=True)]
    )
    return ids


def insert_messages(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Add one tenant's message rows (bodies included, :func:`insert_message_rows`) and their
    "planned" timeline entries, in one more statement; returns the ids in row order."""
    ids = insert_message_rows(conn, rows)
    timeline.record(
        conn,
        (
            {
                "message_id": message_id,
                "at": row["created_at"],
                "status": row["status"],
                "entry": "planned",
                "reason": row.get("status_reason"),  # why it was suppressed at planning
                "data": _planned_data(row),
            }
            for message_id, row in zip(ids, rows, strict=True)
        ),
    )
    return ids


@dataclass(frozen=True)
class PendingMessage:
    """A message planned but not yet claimed: it may still move or be cancelled."""

    id: int
    subject_id: int
    kind: str
    contact_id: int | None
    address: str
    channel: str
    send_key: str
    due_at: datetime
    status: str


PENDING = (MessageStatus.PLANNED.value, MessageStatus.DUE.value)


def pending_messages(
    conn: Connection, tenant_id: int, subject_ids: Iterable[int]
) -> dict[int, list[PendingMessage]]:
    """The pending messages of these subjects, by subject, locked until the commit."""
    wanted = sorted(set(subject_ids))
    found: dict[int, list[PendingMessage]] = {s: [] for s in wanted}
    for part in chunks(wanted):
        query = (
            select(
                messages.c.id,
                messages.c.subject_id,
                messages.c.kind,
                messages.c.contact_id,
                messages.c.address,
                messages.c.channel,
                messages.c.send_key,
                messages.c.due_at,
                messages.c.status,
            )
            .where(
                messages.c.tenant_id == tenant_id,
                messages.c.subject_id.in_(part),
                messages.c.status.in_(PENDING),
            )
            .order_by(messages.c.id)
            .with_for_update()
        )
        for row in conn.execute(query):
            found[row.subject_id].append(PendingMessage(*row))
    return found


def cancel_messages(
    conn: Connection, cancelled: Sequence[tuple[int, str]], *, now: datetime
) -> None:
    """Cancel pending messages ``(id, reason)``, each with its reason in the timeline."""
    if not cancelled:
        return
    ordered = sorted(cancelled)
    conn.execute(
        update(messages)
        .where(
            messages.c.id == bindparam("b_id"),
            or_(*(messages.c.status == status for status in PENDING)),
        )
        .values(
            status=MessageStatus.CANCELLED.value,
            status_reason=bindparam("b_reason"),
            updated_at=now,
        ),
        [{"b_id": i, "b_reason": reason} for i, reason in ordered],
    )
    timeline.record(
        conn,
        (
            {"message_id": i, "at": now, "status": "cancelled", "entry": "cancelled", "reason": r}
            for i, r in ordered
        ),
    )


MOVED_COLUMNS = (
    "send_key",
    "due_at",
    "status",
    "priority",
    "locale",
    "to_name",
    "subject_line",
    "event_id",
)


def replace_contents(conn: Connection, contents: Sequence[Mapping[str, Any]]) -> None:
    """New bodies for existing messages (re-rendered): ``message_id`` and the three bodies."""
    if not contents:
        return
    conn.execute(
        update(message_contents)
        .where(message_contents.c.message_id == bindparam("b_id"))
        .values({c: bindparam(f"b_{c}") for c in CONTENT_COLUMNS}),
        [{"b_id": c["message_id"], **{f"b_{k}": c[k] for k in CONTENT_COLUMNS}} for c in contents],
    )


def move_messages(
    conn: Connection, moved: Sequence[tuple[int, Mapping[str, Any], datetime]], *, now: datetime
) -> None:
    """Re-planned messages ``(id, new row, old due time)`` take their new time and content."""
    if not moved:
        return
    ordered = sorted(moved, key=lambda m: m[0])
    conn.execute(
        update(messages)
        .where(messages.c.id == bindparam("b_id"))
        .values({**{c: bindparam(f"b_{c}") for c in MOVED_COLUMNS}, "updated_at": now}),
        [{"b_id": i, **{f"b_{c}": row[c] for c in MOVED_COLUMNS}} for i, row, _ in ordered],
    )
    replace_contents(conn, [contents_of(i, row) for i, row, _ in ordered])
    timeline.record(
        conn,
        (
            {
                "message_id": i,
                "at": now,
                "status": row["status"],
                "entry": "replanned",
                "data": {"due_at": row["due_at"].isoformat(), "was": old.isoformat()},
            }
            for i, row, old in ordered
            if row["due_at"] != old  # content refreshed in place says nothing
        ),
    )
