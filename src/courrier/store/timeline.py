"""A message's timeline: one row per status change or attempt, with its reason."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import Connection, select

from courrier.store.bulk import insert_rows
from courrier.store.schema import message_events


class TimelineEntry(TypedDict, total=False):
    message_id: int
    at: datetime
    status: str  # the message's status after this entry
    entry: str  # planned, claimed, attempt, sent, retry, failed, released, cancelled...
    reason: str | None
    data: Mapping[str, Any] | None


def record(conn: Connection, entries: Iterable[TimelineEntry]) -> None:
    """Add entries in one round trip (``COPY`` on PostgreSQL, executemany elsewhere)."""
    rows = [{"reason": None, "data": None, **entry} for entry in entries]
    insert_rows(conn, message_events, rows)


def timeline_of(conn: Connection, message_id: int) -> list[dict[str, Any]]:
    """The entries of one message, oldest first."""
    query = (
        select(message_events)
        .where(message_events.c.message_id == message_id)
        .order_by(message_events.c.at, message_events.c.id)
    )
    return [dict(row._mapping) for row in conn.execute(query)]
