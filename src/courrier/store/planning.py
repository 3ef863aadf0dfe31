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


def insert_messages(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Add message rows (all columns of ``messages`` but ``id``) and their "planned" entries.

    One executemany for the messages, one for their timeline; returns the
    new ids in the order of ``rows``.
    """
    if not rows:
        return []
    statement = insert(messages).returning(messages.c.id, sort_by_parameter_order=True)
    ids = list(conn.execute(statement, list(rows)).scalars())
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
