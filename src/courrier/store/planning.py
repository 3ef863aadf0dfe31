"""Storing planned messages: in batches, each under its unique send key, with its timeline.

A send key already present means the message was planned before (by another
event, or a racing request): it is not planned again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, insert, select

from courrier.store import timeline
from courrier.store.schema import messages


def existing_send_keys(conn: Connection, tenant_id: int, keys: Iterable[str]) -> set[str]:
    """Those of ``keys`` the tenant already has a message for."""
    wanted = sorted(set(keys))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        query = select(messages.c.send_key).where(
            messages.c.tenant_id == tenant_id,
            messages.c.send_key.in_(wanted[start : start + 500]),
        )
        found.update(conn.execute(query).scalars())
    return found


def _ids_by_send_key(conn: Connection, tenant_id: int, keys: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(keys), 500):
        query = select(messages.c.send_key, messages.c.id).where(
            messages.c.tenant_id == tenant_id, messages.c.send_key.in_(keys[start : start + 500])
        )
        found.update((key, message_id) for key, message_id in conn.execute(query))
    return found


def insert_messages(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Add one tenant's message rows and their "planned" timeline entries.

    One executemany for the messages (a plain one: on PostgreSQL several
    times faster than INSERT ... RETURNING), one query for their ids by send
    key, one executemany for the timeline; returns the ids in row order.
    """
    if not rows:
        return []
    conn.execute(insert(messages), list(rows))
    by_key = _ids_by_send_key(conn, rows[0]["tenant_id"], [row["send_key"] for row in rows])
    ids = [by_key[row["send_key"]] for row in rows]
    timeline.record(
        conn,
        (
            {
                "message_id": message_id,
                "at": row["created_at"],
                "status": row["status"],
                "entry": "planned",
                "data": {"due_at": row["due_at"].isoformat(), "send_key": row["send_key"]},
            }
            for message_id, row in zip(ids, rows, strict=True)
        ),
    )
    return ids
