"""The delivery queue: claiming due messages under a lease, and recording what became of them.

A claim takes the most urgent of three parts, each read from the partial
index of its status (:data:`CLAIM_PARTS`): the due messages, the planned
ones whose time has come, the expired leases; each part reads at most a
batch, so a claim costs the same however much is waiting (but for due
messages waiting ahead for a retry or a rate limit, which the due part
steps over). On PostgreSQL a claim is one statement (:data:`POSTGRES_CLAIM`):
each part peeked at, then as many of its rows locked ``FOR UPDATE SKIP
LOCKED`` as the batch takes from it, then ``UPDATE ... FROM picked
RETURNING``: workers claim side by side without waiting on each other,
taking the same row, or holding rows they did not take. On SQLite,
whose ``RETURNING`` cannot name the rows picked in ``FROM``, it is a SELECT
then an ``UPDATE ... RETURNING`` inside the engine's ``BEGIN IMMEDIATE``
transaction, which keeps every other writer out until the commit. Every
update after a claim is guarded by ``lease_owner``, so a worker whose lease
was taken over cannot overwrite the new owner's record.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, text, update

from courrier.domain.status import CLAIMABLE, MessageStatus, can_move
from courrier.store.schema import message_contents, messages
from courrier.store.statements import Prepared, array, in_array

__all__ = [
    "CLAIMED_COLUMNS",
    "ClaimedMessage",
    "Outcome",
    "claim_due",
    "next_wakeup",
    "process_prefix",
    "record_outcomes",
    "renew_lease",
    "sending_elsewhere",
]

m = messages
S = MessageStatus


@dataclass(frozen=True)
class ClaimedMessage:
    """A message now leased to this worker, with what it needs to be sent.

    ``row`` has the columns of :data:`CLAIMED_COLUMNS`, as they are after the claim, and
    the message's bodies (``body_text``, ``body_html``, ``attachments``).
    """

    row: dict[str, Any]
    previous_status: MessageStatus
    previous_owner: str | None

    @property
    def id(self) -> int:
        return int(self.row["id"])

    @property
    def attempts(self) -> int:
        return int(self.row["attempts"])

    @property
    def taken_over(self) -> bool:
        """True when another worker's expired lease was taken over."""
        return self.previous_status == S.SENDING


@dataclass(frozen=True)
class Outcome:
    """What one claimed message became: its new status and the fields that go with it."""

    message_id: int
    status: MessageStatus
    reason: str | None = None
    due_at: datetime | None = None  # for a retry
    sent_at: datetime | None = None
    attempts_delta: int = 0  # -1 gives back the attempt of a released claim


#: the columns a claim reads back: what the checks, the build and the record use, not the
#: bookkeeping (reading and converting four timestamps a row cost a tenth of the claim)
CLAIMED_COLUMNS = tuple(
    c
    for c in m.c
    if c.name
    not in {"status_reason", "lease_owner", "lease_until", "created_at", "updated_at", "sent_at"}
)

CLAIMED_NAMES = tuple(c.name for c in CLAIMED_COLUMNS)
#: a status by its stored value
STATUSES = {s.value: s for s in MessageStatus}

if not all(can_move(status, S.SENDING) for status in (*CLAIMABLE, S.SENDING)):
    raise ImportError("the status table no longer allows claiming; queue.py needs a look")


def claim_due(
    conn: Connection,
    *,
    now: datetime,
    worker_id: str,
    lease_until: datetime,
    limit: int,
    channel: str = "email",
) -> list[ClaimedMessage]:
    """Lease up to ``limit`` due messages of ``channel`` (priority, then due time) to ``worker_id``.

    Claimed messages go to status ``sending`` with one more attempt; they
    come back highest priority first.
    """
    claim = _claim_postgres if conn.dialect.name == "postgresql" else _claim_sqlite
    return claim(
        conn, now=now, worker_id=worker_id, lease_until=lease_until, limit=limit, channel=channel
    )


def _claim_postgres(
    conn: Connection,
    *,
    now: datetime,
    worker_id: str,
    lease_until: datetime,
    limit: int,
    channel: str,
) -> list[ClaimedMessage]:
    """One statement, :data:`POSTGRES_CLAIM`: UPDATE ... FROM (SELECT ... FOR UPDATE SKIP
    LOCKED) RETURNING, to the driver as written (see :func:`_claim_sqlite`)."""
    dialect = conn.dialect
    instant = _bind_converter(dialect, m.c.due_at)
    at = instant(now)
    leased = conn.exec_driver_sql(
        POSTGRES_CLAIM, _postgres_params(channel, at, limit, worker_id, instant(lease_until))
    ).fetchall()
    width = len(CLAIMED_NAMES)
    rows = list(_converted_rows(dialect, [row[:width] for row in leased]))
    _add_contents(conn, {row["id"]: row for row in rows})
    claimed = [
        ClaimedMessage(data, STATUSES[row[width]], row[width + 1])
        for data, row in zip(rows, leased, strict=True)
    ]
    claimed.sort(key=lambda c: (-c.row["priority"], c.row["due_at"], c.id))
    return claimed


def _claim_sqlite(
    conn: Connection,
    *,
    now: datetime,
    worker_id: str,
    lease_until: datetime,
    limit: int,
    channel: str,
) -> list[ClaimedMessage]:
    """SELECT then UPDATE ... RETURNING, atomic because the transaction holds the write lock.

    SQLite's RETURNING cannot name the FROM tables of an UPDATE, so the
    previous status and owner are read first; the engine's ``BEGIN
    IMMEDIATE`` keeps any other writer out between the two statements.
    Both go to the driver as written in :data:`SQLITE_PICK` and
    :data:`SQLITE_LEASE` (the ids as one JSON array), and the rows come
    back through the columns' own converters: SQLAlchemy's compiling,
    binding and row handling cost as much as the statements themselves.
    """
    dialect = conn.dialect
    instant = _bind_converter(dialect, m.c.due_at)
    at = instant(now)
    picked = conn.exec_driver_sql(SQLITE_PICK, (*_parts(channel, at, limit), limit)).fetchall()
    if not picked:
        return []
    ids = [row[0] for row in picked]
    leased = conn.exec_driver_sql(
        SQLITE_LEASE, (S.SENDING.value, worker_id, instant(lease_until), at, json.dumps(ids))
    ).fetchall()
    rows = {row["id"]: row for row in _converted_rows(dialect, leased)}
    _add_contents(conn, rows)
    return [
        ClaimedMessage(rows[message_id], STATUSES[status], owner)
        for message_id, status, owner in picked
        if message_id in rows
    ]


#: the bodies of some messages, to send them
_CONTENTS = Prepared(
    lambda dialect: select(
        message_contents.c.message_id,
        message_contents.c.body_text,
        message_contents.c.body_html,
        message_contents.c.attachments,
    ).where(in_array(dialect, message_contents.c.message_id, "ids"))
)


def _add_contents(conn: Connection, rows: dict[int, dict[str, Any]]) -> None:
    """Put each claimed row's bodies (``message_contents``) in it, by message id."""
    if not rows:
        return
    found = conn.execute(_CONTENTS(conn), {"ids": array(conn, list(rows))})
    for message_id, body, html, attachments in found:
        row = rows[message_id]
        row["body_text"], row["body_html"], row["attachments"] = body, html, attachments


def _parts(channel: str, at: Any, limit: int) -> tuple[Any, ...]:
    """The parameters of the parts of a claim (:data:`CLAIM_PARTS`)."""
    return (channel, at, limit) * len(CLAIM_PARTS)


def _postgres_params(
    channel: str, at: Any, limit: int, worker_id: str, lease_until: Any
) -> tuple[Any, ...]:
    """The parameters of :data:`POSTGRES_CLAIM`: the peeks, the batch, the locking parts,
    the batch again, the lease.

    The locking parts take no more than the batch, but the planner, not knowing
    their counts, would expect thousands of rows and join them to ``messages``
    by a scan of the whole table: ``picked`` says the batch's size again.
    """
    lease = (S.SENDING.value, worker_id, lease_until, at)
    locking = (channel, at) * len(CLAIM_PARTS)
    return (*_parts(channel, at, limit), limit, *locking, limit, *lease)


def _bind_converter(dialect: Any, column: Any) -> Any:
    convert = column.type.dialect_impl(dialect).bind_processor(dialect)
    return convert if convert is not None else (lambda value: value)


def _converted_rows(dialect: Any, rows: Sequence[Any]) -> Iterator[dict[str, Any]]:
    """Each claimed row as a dict, its values through their columns' result converters.

    A value equal to the row before's whose result cannot be changed (None,
    an instant: a batch's rows were mostly planned at the same instant)
    takes that result again.
    """
    converters = [
        (k, f)
        for k, column in enumerate(CLAIMED_COLUMNS)
        if (f := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
    ]
    last: dict[int, tuple[Any, Any]] = {}
    for row in rows:
        values = list(row)
        for k, f in converters:
            value = values[k]
            if value is None:
                continue
            seen = last.get(k)
            if seen is not None and seen[0] == value:
                values[k] = seen[1]
                continue
            values[k] = f(value)
            if values[k] is None or isinstance(values[k], datetime):
                last[k] = (value, values[k])
        yield dict(zip(CLAIMED_NAMES, values, strict=True))


#: what a claim takes, each part from the partial index of its status
#: (schema.WAITING_INDEXES), whose status the condition names as a literal, in that index's
#: order: the due messages most urgent first; the planned ones whose time has come and the
#: expired leases, earliest first. Each part reads at most a batch of rows however many
#: are waiting, and the claim takes the most urgent of them (priority, then due time).
#: (Planned messages are taken by priority among the batch that came due first: they only
#: outnumber a batch after the workers were stopped for a while.)
CLAIM_PARTS = (
    ("status = 'due' AND due_at <= {p}", "priority DESC, due_at, id"),
    ("status = 'planned' AND due_at <= {p}", "due_at, id"),
    ("status = 'sending' AND lease_until < {p}", "lease_until, id"),
)
if {S.DUE, S.PLANNED} != CLAIMABLE:
    raise ImportError("the claimable statuses changed; CLAIM_PARTS (and the indexes) need a look")
_ORDER = "ORDER BY priority DESC, due_at, id"
#: what each part of a claim reads of a message
_SELECT = "SELECT id, status, lease_owner, priority, due_at FROM messages"


def _part(part: tuple[str, str], p: str, *, limit: str = "", locking: str = "") -> str:
    """One part of a claim: up to a batch (or ``limit``) of one status's claimable messages."""
    condition, order = part
    return (
        f"{_SELECT} WHERE channel = {p} AND {condition.format(p=p)} ORDER BY {order}"
        f" LIMIT {limit or p}{locking}"
    )


# (placeholders and column names only in the f-strings below: every value is bound)
#: the ids to claim, most urgent first: (channel, instant, limit) for each part, then the limit
_SQLITE_PARTS = " UNION ALL ".join(f"SELECT * FROM ({_part(c, '?')})" for c in CLAIM_PARTS)  # noqa: S608
SQLITE_PICK = f"SELECT id, status, lease_owner FROM ({_SQLITE_PARTS}) {_ORDER} LIMIT ?"  # noqa: S608
#: the lease of the picked ids (a JSON array), reading back the claimed columns
SQLITE_LEASE = (
    "UPDATE messages SET status = ?, lease_owner = ?, lease_until = ?, updated_at = ?,"  # noqa: S608
    " attempts = attempts + 1 WHERE id IN (SELECT value FROM json_each(?))"
    f" RETURNING {', '.join(CLAIMED_NAMES)}"
)
#: the claim on PostgreSQL: workers claim side by side, none waiting on another's rows.
#: FOR UPDATE is not allowed on a UNION, and a part locking a batch of its own would keep
#: the rows the claim leaves out locked until the commit, so each part first peeks at its
#: batch unlocked, and ``top`` picks the most urgent of them. Then the due part locks as
#: many as ``top`` took from it, in its order, skipping rows another worker holds (which
#: then takes the next ones: under load, workers get full batches side by side); the other
#: two lock exactly the rows ``top`` chose, if no one holds them. Each re-checks its
#: condition on rows changed meanwhile, and a claim locks no more than it takes.
_PEEKS = ", ".join(f"peek{k} AS ({_part(c, '%s')})" for k, c in enumerate(CLAIM_PARTS))
_CANDIDATES = " UNION ALL ".join(
    f"SELECT {k} AS part, id, priority, due_at FROM peek{k}"  # noqa: S608
    for k in range(len(CLAIM_PARTS))
)
_SKIP = " FOR UPDATE SKIP LOCKED"


def _locked_part(k: int, part: tuple[str, str]) -> str:
    """Part ``k`` of the claim, locking the rows ``top`` took from it (see above)."""
    if k == 0:
        taken = f"(SELECT count(*) FROM top WHERE part = {k})"  # noqa: S608
        return _part(part, "%s", limit=taken, locking=_SKIP)
    condition, _order = part
    return (
        f"{_SELECT} WHERE id IN (SELECT id FROM top WHERE part = {k}) AND channel = %s"  # noqa: S608
        f" AND {condition.format(p='%s')}{_SKIP}"
    )


_LOCKED = ", ".join(f"part{k} AS ({_locked_part(k, c)})" for k, c in enumerate(CLAIM_PARTS))
_PICKED = " UNION ALL ".join(f"SELECT * FROM part{k}" for k in range(len(CLAIM_PARTS)))  # noqa: S608
POSTGRES_CLAIM = (
    f"WITH {_PEEKS}, top AS (SELECT part, id FROM ({_CANDIDATES}) AS candidates"  # noqa: S608
    f" {_ORDER} LIMIT %s), {_LOCKED}, picked AS ({_PICKED} LIMIT %s)"
    " UPDATE messages SET status = %s, lease_owner = %s, lease_until = %s, updated_at = %s,"
    " attempts = messages.attempts + 1 FROM picked WHERE messages.id = picked.id"
    f" RETURNING {', '.join('messages.' + name for name in CLAIMED_NAMES)},"
    " picked.status, picked.lease_owner"
)


def record_outcomes(
    conn: Connection, outcomes: Sequence[Outcome], *, worker_id: str, now: datetime
) -> set[int]:
    """Write outcomes, those alike in one statement; return the ids actually updated.

    A message whose lease this worker no longer holds is left alone (its
    new owner records it), and is missing from the returned ids. Both
    statements go to the driver as written (:data:`STILL_OURS`,
    :data:`OUTCOME`), the ids as one array: every group of outcomes alike
    (a batch is mostly "sent at now") is one execution of the same UPDATE.
    """
    if not outcomes:
        return set()
    for outcome in outcomes:
        if not can_move(S.SENDING, outcome.status):
            raise ValueError(f"a claimed message cannot move to {outcome.status}")
    dialect = conn.dialect
    ids = _id_array(dialect, [o.message_id for o in outcomes])
    # Locked (PostgreSQL) in id order until the commit, as every writer of many messages
    # locks them, so no one takes them over meanwhile; on SQLite the write lock does.
    still_ours = {
        message_id
        for (message_id,) in conn.exec_driver_sql(
            STILL_OURS[dialect.name], (ids, worker_id, S.SENDING.value)
        ).fetchall()
    }
    alike: dict[tuple[Any, ...], list[int]] = {}
    for o in sorted(outcomes, key=lambda o: o.message_id):
        if o.message_id in still_ours:
            key = (o.status, o.reason, o.due_at, o.sent_at, o.attempts_delta)
            alike.setdefault(key, []).append(o.message_id)
    instant = _bind_converter(dialect, m.c.due_at)
    at = instant(now)
    params = [
        (
            status.value,
            reason,
            at,
            None if due_at is None else instant(due_at),
            None if sent_at is None else instant(sent_at),
            delta,
            _id_array(dialect, group),
            worker_id,
        )
        for (status, reason, due_at, sent_at, delta), group in alike.items()
    ]
    if params:
        conn.exec_driver_sql(OUTCOME[dialect.name], params)
    return still_ours


def _id_array(dialect: Any, ids: list[int]) -> Any:
    """Ids bound as one value: a JSON array for SQLite's ``json_each``, else a list (an ARRAY)."""
    return json.dumps(ids) if dialect.name == "sqlite" else ids


#: the messages among an array of ids still leased to a worker
STILL_OURS = {
    "sqlite": (
        "SELECT id FROM messages WHERE id IN (SELECT value FROM json_each(?))"
        " AND lease_owner = ? AND status = ?"
    ),
    "postgresql": (
        "SELECT id FROM messages WHERE id = ANY(%s::bigint[])"
        " AND lease_owner = %s AND status = %s ORDER BY id FOR UPDATE"
    ),
}
#: one outcome for the messages of an array of ids still leased to a worker
OUTCOME = {
    "sqlite": (
        "UPDATE messages SET status = ?, status_reason = ?, lease_owner = NULL,"
        " lease_until = NULL, updated_at = ?, due_at = coalesce(?, due_at),"
        " sent_at = coalesce(?, sent_at), attempts = attempts + ?"
        " WHERE id IN (SELECT value FROM json_each(?)) AND lease_owner = ?"
    ),
    "postgresql": (
        "UPDATE messages SET status = %s, status_reason = %s, lease_owner = NULL,"
        " lease_until = NULL, updated_at = %s, due_at = coalesce(%s, due_at),"
        " sent_at = coalesce(%s, sent_at), attempts = attempts + %s"
        " WHERE id = ANY(%s::bigint[]) AND lease_owner = %s"
    ),
}


def renew_lease(
    conn: Connection, message_ids: Sequence[int], *, worker_id: str, lease_until: datetime
) -> int:
    """Push back the expiry of leases this worker still holds (a long batch); how many."""
    if not message_ids:
        return 0
    result = conn.execute(
        update(m)
        .where(
            m.c.id.in_(list(message_ids)),
            m.c.lease_owner == worker_id,
            m.c.status == S.SENDING.value,
        )
        .values(lease_until=lease_until)
    )
    return int(result.rowcount)


def next_wakeup(conn: Connection, channel: str = "email") -> datetime | None:
    """The earliest instant something of ``channel`` becomes claimable: due time or lease expiry.

    One look per waiting status, each in its own index (its status a literal, see
    :data:`CLAIM_PARTS`): the first planned and the first leased message are the first
    entries of theirs; the due ones are read whole, as few as are waiting to be retried.
    """
    found = [
        conn.execute(
            select(func.min(column)).where(m.c.channel == channel, text(f"status = '{status}'"))
        ).scalar()
        for column, status in (
            (m.c.due_at, S.DUE.value),
            (m.c.due_at, S.PLANNED.value),
            (m.c.lease_until, S.SENDING.value),
        )
    ]
    candidates = [t for t in found if t is not None]
    return min(candidates) if candidates else None


def process_prefix() -> str:
    """How the ids (lease owners) of this process's workers start: ``host:pid:``."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:"


def sending_elsewhere(conn: Connection, own_prefix: str, now: datetime) -> bool:
    """True when a worker whose id does not start with ``own_prefix`` holds a lease now.

    A worker of another process is sending, so it will want the write lock
    again soon (see :mod:`courrier.engine.rehearsal`). Reads the messages
    being sent (by the status's index) and stops at the first that is not
    this process's: a look costs about as much as there are messages leased.
    """
    query = (
        select(m.c.id)
        .where(
            text(f"status = '{S.SENDING.value}'"),
            m.c.lease_until > now,
            ~m.c.lease_owner.startswith(own_prefix, autoescape=True),
        )
        .limit(1)
    )
    return conn.execute(query).first() is not None
