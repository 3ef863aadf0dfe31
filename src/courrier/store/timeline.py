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
#: (SQLite: ids as a JSON array; PostgreSQL: as an array, kept in its order)
ALIKE = {
    "sqlite": (
        "INSERT INTO message_events (message_id, at, status, entry, reason, data)"
        " SELECT value, ?, ?, ?, ?, ? FROM json_each(?)"
    ),
    "postgresql": (
        "INSERT INTO message_events (message_id, at, status, entry, reason, data)"
        " SELECT id, %s, %s, %s, %s, %s::jsonb"
        " FROM unnest(%s::bigint[]) WITH ORDINALITY AS run(id, n) ORDER BY n"
    ),
}


def record(conn: Connection, entries: Iterable[TimelineEntry]) -> None:
    """Add entries in few round trips (``COPY`` on PostgreSQL, executemany elsewhere).

    A run of entries alike but for their message (a batch's claims: the
    same instant, entry and data dict) is one ``INSERT ... SELECT`` over
    the ids as one array, for half the CPU of writing them row by row; the
    rows and their order are the same.
    """
    if conn.dialect.name not in ALIKE:
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
    ids = [row["message_id"] for row in run]
    params = (
        at(first["at"]) if at is not None else first["at"],
        first["status"],
        first["entry"],
        first.get("reason"),
        _json_data(conn, first.get("data")),
        json.dumps(ids) if dialect.name == "sqlite" else ids,
    )
    conn.exec_driver_sql(ALIKE[dialect.name], params)


def _json_data(conn: Connection, data: Mapping[str, Any] | None) -> str | None:
    """``data`` as the other path writes it: no data is JSON ``null`` on SQLite, NULL on
    PostgreSQL (its ``COPY`` leaves None alone)."""
    if data is None and conn.dialect.name == "postgresql":
        return None
    return str(json_text(conn, data))


def timeline_of(conn: Connection, message_id: int) -> list[dict[str, Any]]:
    """The entries of one message, oldest first."""
    query = (
        select(message_events)
        .where(message_events.c.message_id == message_id)
        .order_by(message_events.c.at, message_events.c.id)
    )
    return [dict(row._mapping) for row in conn.execute(query)]
