"""A message's timeline: one row per status change or attempt, with its reason."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import Connection, select

from courrier.store.bulk import insert_rows, json_text
from courrier.store.schema import message_events


class TimelineEntry(TypedDict, total=False):
    message_id: int
    at: datetime
    status: str  # the message's status after this entry
    entry: str  # planned, claimed, attempt, sent, retry, failed, released, cancelled...
    reason: str | None
    data: Mapping[str, Any] | None


#: the columns every entry gives
GIVEN = frozenset({"message_id", "at", "status", "entry"})
#: a run of entries alike but for their message, written by one INSERT ... SELECT on SQLite
SQLITE_ALIKE = (
    "INSERT INTO message_events (message_id, at, status, entry, reason, data)"
    " SELECT value, ?, ?, ?, ?, ? FROM json_each(?)"
)


def record(conn: Connection, entries: Iterable[TimelineEntry]) -> None:
    """Add entries in one round trip (``COPY`` on PostgreSQL, executemany elsewhere).

    On SQLite, a run of entries alike but for their message (a batch's
    claims: the same instant, entry and data dict) is one ``INSERT ...
    SELECT`` over the ids as a JSON array, for a third of an executemany's
    CPU; the rows and their order are the same.
    """
    if conn.dialect.name != "sqlite":
        insert_rows(conn, message_events, _rows(entries))
        return
    others: list[TimelineEntry] = []
    for run in _runs(entries):
        if len(run) < 2:
            others += run
            continue
        insert_rows(conn, message_events, _rows(others))
        others = []
        _insert_alike(conn, run)
    insert_rows(conn, message_events, _rows(others))


def _rows(entries: Iterable[TimelineEntry]) -> list[dict[str, Any]]:
    return [{"reason": None, "data": None, **entry} for entry in entries]


def _runs(entries: Iterable[TimelineEntry]) -> Iterator[list[TimelineEntry]]:
    """Consecutive entries alike but for their message (the same data dict, not an equal one)."""
    run: list[TimelineEntry] = []
    last: tuple[Any, ...] = ()
    for entry in entries:
        key = (
            entry.keys() - {"reason", "data"} == GIVEN,
            entry["at"],
            entry["status"],
            entry["entry"],
            entry.get("reason"),
            id(entry.get("data")),
        )
        if key != last or not key[0]:
            if run:
                yield run
            run, last = [], key
        run.append(entry)
    if run:
        yield run


def _insert_alike(conn: Connection, run: Sequence[TimelineEntry]) -> None:
    first = run[0]
    dialect = conn.dialect
    at = message_events.c.at.type.dialect_impl(dialect).bind_processor(dialect)
    params = (
        at(first["at"]) if at is not None else first["at"],
        first["status"],
        first["entry"],
        first.get("reason"),
        str(json_text(conn, first.get("data"))),
        json.dumps([row["message_id"] for row in run]),
    )
    conn.exec_driver_sql(SQLITE_ALIKE, params)


def timeline_of(conn: Connection, message_id: int) -> list[dict[str, Any]]:
    """The entries of one message, oldest first."""
    query = (
        select(message_events)
        .where(message_events.c.message_id == message_id)
        .order_by(message_events.c.at, message_events.c.id)
    )
    return [dict(row._mapping) for row in conn.execute(query)]
