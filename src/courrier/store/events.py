"""Events as received: one per (tenant, idempotency key), with the answer given.

The answer is stored with the event so that a repeat of the same key gets
exactly the same answer back without planning anything again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select

from courrier.store.bulk import insert_numbered_rows, one_of, update_rows
from courrier.store.schema import events


def stored_answers(
    conn: Connection, tenant_id: int, keys: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """The answers already given to these idempotency keys (absent: never seen)."""
    wanted = sorted(set(keys))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), 500):
        query = select(events.c.idempotency_key, events.c.id, events.c.response).where(
            events.c.tenant_id == tenant_id,
            one_of(conn, events.c.idempotency_key, wanted[start : start + 500]),
        )
        for key, event_id, response in conn.execute(query):
            found[key] = dict(response) if response else {"event_id": event_id, "messages": []}
    return found


def insert_events(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Add one tenant's events; return their ids in order. A repeated key raises IntegrityError.

    Each row has ``tenant_id, type, idempotency_key, subject_id, payload,
    occurred_at, received_at``.
    """
    if not rows:
        return []
    # One bulk insert (see courrier.store.bulk), then (but on SQLite) one query for the ids:
    # on PostgreSQL this is several times faster than INSERT ... RETURNING over many rows.
    numbered = insert_numbered_rows(conn, events, rows)
    if numbered is not None:
        return list(numbered)
    tenant_id = rows[0]["tenant_id"]
    keys = [row["idempotency_key"] for row in rows]
    ids: dict[str, int] = {}
    for start in range(0, len(keys), 500):
        query = select(events.c.idempotency_key, events.c.id).where(
            events.c.tenant_id == tenant_id,
            one_of(conn, events.c.idempotency_key, keys[start : start + 500]),
        )
        ids.update((key, event_id) for key, event_id in conn.execute(query))
    return [ids[key] for key in keys]


def store_answers(conn: Connection, answers: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Keep the answer given for each event id, to replay it on a repeat."""
    update_rows(conn, events, "id", [{"id": i, "response": a} for i, a in answers])
