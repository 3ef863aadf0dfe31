"""Events as received: one per (tenant, idempotency key), with the answer given.

The answer is stored beside the event (``event_answers``) so that a repeat
of the same key gets exactly the same answer back without planning anything
again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Select, bindparam, select

from courrier.store.bulk import insert_numbered_rows, insert_rows
from courrier.store.schema import event_answers, events
from courrier.store.statements import Prepared, array, chunks, keyed_rows


def _by_keys(dialect: str) -> Select[Any]:
    """The events of a tenant among some idempotency keys, with the answers given."""
    source, row = keyed_rows(
        dialect,
        events,
        events.c.idempotency_key,
        "keys",
        events.c.tenant_id == bindparam("tenant"),
        columns=["idempotency_key", "id"],
    )
    answered = source.outerjoin(event_answers, event_answers.c.event_id == row.c.id)
    return select(row.c.idempotency_key, row.c.id, event_answers.c.response).select_from(answered)


_BY_KEYS = Prepared(_by_keys)


def stored_answers(
    conn: Connection, tenant_id: int, keys: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """The answers already given to these idempotency keys (absent: never seen)."""
    wanted = sorted(set(keys))
    found: dict[str, dict[str, Any]] = {}
    for part in chunks(wanted):
        chunk = array(conn, part)
        for key, event_id, response in conn.execute(
            _BY_KEYS(conn), {"tenant": tenant_id, "keys": chunk}
        ):
            found[key] = dict(response) if response else {"event_id": event_id, "messages": []}
    return found


def insert_events(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Add one tenant's events; return their ids in order. A repeated key raises IntegrityError.

    Each row has ``tenant_id, type, idempotency_key, subject_id, payload,
    occurred_at, received_at``.
    """
    if not rows:
        return []
    # One bulk insert that gives the ids back (see courrier.store.bulk); else one query for them:
    # on PostgreSQL, COPY is several times faster than INSERT ... RETURNING over many rows.
    numbered = insert_numbered_rows(conn, events, rows)
    if numbered is not None:
        return list(numbered)
    tenant_id = rows[0]["tenant_id"]
    keys = [row["idempotency_key"] for row in rows]
    ids: dict[str, int] = {}
    for part in chunks(keys):
        chunk = array(conn, part)
        found = conn.execute(_BY_KEYS(conn), {"tenant": tenant_id, "keys": chunk})
        ids.update((key, event_id) for key, event_id, _response in found)
    return [ids[key] for key in keys]


def store_answers(conn: Connection, answers: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Keep the answer given for each event id, to replay it on a repeat."""
    insert_rows(conn, event_answers, [{"event_id": i, "response": a} for i, a in answers])
