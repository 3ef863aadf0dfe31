"""Subjects (bookings, visits, requests...): their latest state and every version of it.

Intake works on batches, so the writes here take lists and go to the
database in one round trip each (:func:`courrier.store.bulk.insert_rows`, or an executemany).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, select, update

from courrier.store.bulk import JSONText, insert_numbered_rows, insert_rows
from courrier.store.schema import subject_versions, subjects
from courrier.store.statements import Prepared, array, chunks, keyed_rows

SubjectKey = tuple[str, str]  # (type, external id)


def _by_keys(dialect: str, *columns: str) -> Select[Any]:
    """A tenant's subjects of one type among some external ids (these columns, or all)."""
    source, rows = keyed_rows(
        dialect,
        subjects,
        subjects.c.external_id,
        "ids",
        subjects.c.tenant_id == bindparam("tenant"),
        subjects.c.type == bindparam("type"),
        columns=columns,
    )
    return select(*rows.c).select_from(source)


_BY_KEYS = Prepared(_by_keys)
_IDS_BY_KEYS = Prepared(lambda dialect: _by_keys(dialect, "external_id", "id"))


@dataclass(frozen=True)
class StoredSubject:
    """A subject as stored: its row id, current version and state."""

    id: int
    type: str
    external_id: str
    version: int
    state: dict[str, Any]


def subjects_by_key(
    conn: Connection, tenant_id: int, keys: Iterable[SubjectKey]
) -> dict[SubjectKey, StoredSubject]:
    """The tenant's subjects among ``keys``, in a few queries whatever their number."""
    found: dict[SubjectKey, StoredSubject] = {}
    for subject_type, ids in _by_type(keys).items():
        for part in chunks(ids):
            chunk = array(conn, part)
            params = {"tenant": tenant_id, "type": subject_type, "ids": chunk}
            for row in conn.execute(_BY_KEYS(conn), params):
                m = row._mapping
                found[(m["type"], m["external_id"])] = StoredSubject(
                    m["id"], m["type"], m["external_id"], m["version"], dict(m["state"])
                )
    return found


def _by_type(keys: Iterable[SubjectKey]) -> dict[str, list[str]]:
    """External ids grouped by subject type, each once."""
    by_type: dict[str, list[str]] = {}
    for subject_type, external_id in set(keys):
        by_type.setdefault(subject_type, []).append(external_id)
    return by_type


def get_subject(
    conn: Connection, tenant_id: int, subject_type: str, external_id: str
) -> StoredSubject | None:
    """One subject, or None."""
    key = (subject_type, external_id)
    return subjects_by_key(conn, tenant_id, [key]).get(key)


def insert_subjects(
    conn: Connection,
    tenant_id: int,
    new: Sequence[StoredSubject],
    *,
    now: datetime,
    encoded: Mapping[SubjectKey, JSONText] | None = None,
) -> list[int]:
    """Add subjects (their ``id`` is ignored); return the new ids in the same order.

    ``encoded``: states already encoded (see :class:`courrier.store.bulk.JSONText`), by key.
    """
    if not new:
        return []
    encoded = encoded or {}
    rows = [
        {
            "tenant_id": tenant_id,
            "type": s.type,
            "external_id": s.external_id,
            "state": encoded.get((s.type, s.external_id), s.state),
            "version": s.version,
            "updated_at": now,
        }
        for s in new
    ]
    # One bulk insert that gives the ids back (see courrier.store.bulk); else one query for them.
    numbered = insert_numbered_rows(conn, subjects, rows)
    if numbered is not None:
        return list(numbered)
    ids: dict[SubjectKey, int] = {}
    for subject_type, external_ids in _by_type((s.type, s.external_id) for s in new).items():
        for part in chunks(external_ids):
            chunk = array(conn, part)
            params = {"tenant": tenant_id, "type": subject_type, "ids": chunk}
            ids.update(((subject_type, e), i) for e, i in conn.execute(_IDS_BY_KEYS(conn), params))
    return [ids[(s.type, s.external_id)] for s in new]


def update_subjects(conn: Connection, changed: Sequence[StoredSubject], *, now: datetime) -> None:
    """Replace the state and version of existing subjects, in one round trip."""
    if not changed:
        return
    statement = (
        update(subjects)
        .where(subjects.c.id == bindparam("b_id"))
        .values(state=bindparam("b_state"), version=bindparam("b_version"), updated_at=now)
    )
    conn.execute(
        statement,
        [{"b_id": s.id, "b_state": s.state, "b_version": s.version} for s in changed],
    )


def record_versions(
    conn: Connection,
    versions: Sequence[tuple[int, int, Mapping[str, Any] | JSONText, int | None]],
    *,
    now: datetime,
) -> None:
    """Keep versions, each ``(subject id, version, state, event id)``; a state may come encoded."""
    insert_rows(
        conn,
        subject_versions,
        [
            {"subject_id": s, "version": v, "state": st, "event_id": e, "recorded_at": now}
            for s, v, st, e in versions
        ],
    )


def versions_of(conn: Connection, subject_id: int) -> list[dict[str, Any]]:
    """Every version of a subject, oldest first."""
    query = (
        select(subject_versions)
        .where(subject_versions.c.subject_id == subject_id)
        .order_by(subject_versions.c.version)
    )
    return [dict(row._mapping) for row in conn.execute(query)]
