"""Claim benchmark: how long a worker's claim of one batch takes as the queue grows.

    .venv/bin/python bench/claims.py                  # SQLite and PostgreSQL
    .venv/bin/python bench/claims.py --quick          # smaller queues, one turn
    .venv/bin/python bench/claims.py --write-docs docs/benchmarks.md

For each database, three queues, each in a fresh database:

- ``batch``: 2,000 booking confirmations due, nothing else;
- ``week ahead``: the same, beside 200,000 reminders planned over the coming
  week and 200,000 messages sent before;
- ``mailing``: 100,000 messages due at once (a mailing to every member).

Each turn makes 20 claims of 100, each in its own transaction, every
claimed message read back with its bodies. Courrier's claim
(:func:`courrier.store.queue.claim_due`, over the partial indexes of
migration 0006) is timed beside the straightforward claim written with the
plain driver (``sqlite3``, psycopg): one statement picking the due or
planned messages whose time has come and the expired leases, most urgent
first, over one index on (status, priority, due time), on a database
migrated to 0005 (the claim Courrier made until then), then a read of the
claimed rows and their bodies. Between turns the claimed messages go back
to the queue (untimed); the fastest of the turns is kept.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from bench.courrier_path import CourrierOptions, booking_event, seeded_database
from bench.report import write_section
from bench.workload import Venue, make_bookings
from courrier.engine.intake import Intake
from courrier.store.queue import claim_due

START = "<!-- bench:claims:start -->"
END = "<!-- bench:claims:end -->"
CLAIMS = 20
BATCH = 100
LEASE = timedelta(seconds=60)
WORKER = "bench-worker"


@dataclass(frozen=True)
class Queue:
    """What waits in the queue: due now, planned for later, sent before."""

    name: str
    due: int
    planned: int = 0
    sent: int = 0


QUEUES = (
    Queue("batch", due=2000),
    Queue("week ahead", due=2000, planned=200_000, sent=200_000),
    Queue("mailing", due=100_000),
)


@contextmanager
def filled_database(kind: str, queue: Queue, revision: str, pg_url: str) -> Iterator[Engine]:
    """A fresh database at ``revision`` holding ``queue`` (copies of one real confirmation)."""
    options = CourrierOptions(database=kind, pg_admin_url=pg_url)
    bookings = make_bookings(1)
    with seeded_database(options, bookings, revision) as (_url, engine, tenant):
        event = booking_event(bookings[0], Venue(), datetime.now(UTC))
        Intake(engine).accept_many(tenant, [event])
        with engine.begin() as conn:
            for status, count, spread in (
                ("due", queue.due - 1, -1),  # each a second earlier, so all are due
                ("planned", queue.planned, 3),  # over the coming week
                ("sent", queue.sent, -150),  # over the past year
            ):
                if count > 0:
                    copy_message(conn, status, count, spread)
            conn.exec_driver_sql("ANALYZE")
        yield engine


def copy_message(conn: Connection, status: str, count: int, seconds: int) -> None:
    """``count`` copies of the first message (and its bodies) in ``status``, the n-th due
    ``n * seconds`` seconds from it, each with its own send key."""
    if conn.dialect.name == "postgresql":
        numbers = "generate_series(1, :count) AS g(n)"
        shifted = "m.due_at + make_interval(secs => g.n * :seconds)"
    else:  # instants are stored as text, 'YYYY-MM-DD HH:MM:SS.ffffff'
        numbers = (
            "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :count)"
            " SELECT n FROM s) AS g"
        )
        shifted = (
            "strftime('%Y-%m-%d %H:%M:%S', m.due_at, (g.n * :seconds) || ' seconds')"
            " || substr(m.due_at, 20)"
        )
    copied = [
        "tenant_id",
        "event_id",
        "subject_id",
        "contact_id",
        "kind",
        "channel",
        "address",
        "priority",
        "attempts",
        "message_id_header",
        "locale",
        "from_addr",
        "from_name",
        "reply_to",
        "to_name",
        "subject_line",
        "created_at",
        "updated_at",
    ]
    last = conn.execute(text("SELECT max(id) FROM messages")).scalar_one()
    conn.execute(
        text(
            f"INSERT INTO messages ({', '.join(copied)}, status, due_at, send_key)"
            f" SELECT {', '.join('m.' + c for c in copied)}, CAST(:status AS VARCHAR(16)), {shifted},"
            " m.send_key || '-' || CAST(:status AS VARCHAR(16)) || '-' || g.n"
            f" FROM (SELECT * FROM messages ORDER BY id LIMIT 1) AS m, {numbers}"
        ),
        {"count": count, "seconds": seconds, "status": status},
    )
    conn.execute(
        text(
            "INSERT INTO message_contents (message_id, body_text, body_html, attachments)"
            " SELECT m.id, c.body_text, c.body_html, c.attachments FROM messages AS m,"
            " (SELECT * FROM message_contents ORDER BY message_id LIMIT 1) AS c"
            " WHERE m.id > :last"
        ),
        {"last": last},
    )


# The straightforward claim, as Courrier made it until migration 0005: one statement over
# the index on (status, priority, due_at). (Only constants in the f-strings: values are bound.)
_PICK = (
    "SELECT id FROM messages WHERE channel = 'email'"
    " AND ((status IN ('due', 'planned') AND due_at <= {p}) OR (status = 'sending' AND lease_until < {p}))"
    " ORDER BY priority DESC, due_at, id LIMIT {p}"
)
_LEASE = (
    "UPDATE messages SET status = 'sending', lease_owner = {p}, lease_until = {p},"
    " attempts = attempts + 1 WHERE id IN ({ids})"
)
_READ = (
    "SELECT m.*, c.body_text, c.body_html, c.attachments FROM messages AS m"
    " JOIN message_contents AS c ON c.message_id = m.id WHERE m.id IN ({ids})"
)


def plain_sqlite_claim(path: str) -> Callable[[datetime], int]:
    """The straightforward claim with ``sqlite3``: pick, lease and read in one write transaction."""
    db = sqlite3.connect(path, isolation_level=None)

    def claim(now: datetime) -> int:
        at = now.replace(tzinfo=None).isoformat(" ")
        until = (now + LEASE).replace(tzinfo=None).isoformat(" ")
        db.execute("BEGIN IMMEDIATE")
        ids = [i for (i,) in db.execute(_PICK.format(p="?"), (at, at, BATCH))]
        marks = ", ".join("?" * len(ids))
        if ids:
            db.execute(_LEASE.format(p="?", ids=marks), (WORKER, until, *ids))
            db.execute(_READ.format(ids=marks), ids).fetchall()
        db.execute("COMMIT")
        return len(ids)

    return claim


def plain_postgres_claim(url: str) -> Callable[[datetime], int]:
    """The straightforward claim with psycopg: one UPDATE ... FOR UPDATE SKIP LOCKED, a read."""
    db = psycopg.connect(url)
    pick = _PICK.format(p="%(at)s").replace("LIMIT %(at)s", "LIMIT %(limit)s")
    lease = (
        "UPDATE messages SET status = 'sending', lease_owner = %(worker)s,"
        " lease_until = %(until)s, attempts = messages.attempts + 1"
        f" FROM ({pick} FOR UPDATE SKIP LOCKED) AS picked WHERE messages.id = picked.id"
        " RETURNING messages.id"
    )
    read = _READ.format(ids="SELECT unnest(%(ids)s::bigint[])")

    def claim(now: datetime) -> int:
        with db.transaction():
            params = {"at": now, "until": now + LEASE, "limit": BATCH, "worker": WORKER}
            ids = [i for (i,) in db.execute(lease, params)]
            if ids:
                db.execute(read, {"ids": ids}).fetchall()
        return len(ids)

    return claim


def courrier_claim(engine: Engine) -> Callable[[datetime], int]:
    """Courrier's claim, in the transaction of a worker's ``engine.begin()``."""

    def claim(now: datetime) -> int:
        with engine.begin() as conn:
            return len(
                claim_due(conn, now=now, worker_id=WORKER, lease_until=now + LEASE, limit=BATCH)
            )

    return claim


def back_to_the_queue(engine: Engine) -> None:
    """Give the claimed messages back (between turns, untimed)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE messages SET status = 'due', lease_owner = NULL, lease_until = NULL,"
                " attempts = 0 WHERE status = 'sending'"
            )
        )


def timed_turns(engine: Engine, claim: Callable[[datetime], int], turns: int) -> float:
    """Milliseconds a claim, the fastest of ``turns`` turns of :data:`CLAIMS` claims."""
    best = float("inf")
    for _ in range(turns):
        back_to_the_queue(engine)
        now = datetime.now(UTC)
        started = time.perf_counter()
        taken = sum(claim(now) for _ in range(CLAIMS))
        best = min(best, (time.perf_counter() - started) / CLAIMS * 1000)
        if taken != CLAIMS * BATCH:
            raise RuntimeError(f"claimed {taken} messages, not {CLAIMS * BATCH}")
    return best


@dataclass(frozen=True)
class Row:
    database: str
    queue: Queue
    plain_ms: float
    courrier_ms: float


def measure(kind: str, queue: Queue, args: argparse.Namespace) -> Row:
    """One queue on one database: the plain claim on 0005's schema, Courrier's on the newest."""
    with filled_database(kind, queue, "0005", args.pg_url) as engine:
        url = engine.url.render_as_string(hide_password=False)
        if kind == "sqlite":
            plain = plain_sqlite_claim(str(engine.url.database))
        else:
            plain = plain_postgres_claim(url.replace("postgresql+psycopg://", "postgresql://"))
        plain_ms = timed_turns(engine, plain, args.repeat)
    with filled_database(kind, queue, "head", args.pg_url) as engine:
        courrier_ms = timed_turns(engine, courrier_claim(engine), args.repeat)
    label = "SQLite" if kind == "sqlite" else "PostgreSQL"
    print(f"  {label}, {queue.name}: plain {plain_ms:.1f} ms, Courrier {courrier_ms:.1f} ms")
    return Row(label, queue, plain_ms, courrier_ms)


def report(rows: list[Row], args: argparse.Namespace) -> str:
    lines = [
        "## The claim, as the queue grows",
        "",
        f"`bench/claims.py`: {CLAIMS} claims of {BATCH} messages, each in its own transaction "
        "with the claimed rows read back with their bodies; milliseconds a claim, the fastest "
        f"of {args.repeat} turns. The plain way is one statement with the driver alone "
        "(`sqlite3`, psycopg) over an index on (status, priority, due time), Courrier's claim "
        "until migration 0005; Courrier's claim since 0006 takes each waiting status from "
        "a partial index of its own. With nothing else waiting the plain claim is a little "
        "faster: it keeps the rows as the driver reads them, where Courrier's makes them the "
        "worker's rows (times with their zone, JSON decoded).",
        "",
        "| database | queue | due | planned later | sent before | plain (ms) | Courrier (ms) "
        "| plain / Courrier |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        q = row.queue
        ratio = row.plain_ms / row.courrier_ms if row.courrier_ms else 0.0
        lines.append(
            f"| {row.database} | {q.name} | {q.due:,} | {q.planned:,} | {q.sent:,} "
            f"| {row.plain_ms:.1f} | {row.courrier_ms:.1f} | {ratio:.1f}x |"
        )
    lines += [
        "",
        f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, measured "
        f"{datetime.now(UTC):%Y-%m-%d}.",
        "",
        "Rerun: `.venv/bin/python bench/claims.py --write-docs docs/benchmarks.md` "
        "(or `--quick`, printing only).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="queues a tenth the size, one turn")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--repeat", type=int, default=3, help="turns per claim; the fastest is kept"
    )
    parser.add_argument("--write-docs", type=Path)
    args = parser.parse_args(argv)
    queues = QUEUES
    if args.quick:
        args.repeat = 1
        queues = tuple(
            Queue(q.name, max(q.due // 10, CLAIMS * BATCH), q.planned // 10, q.sent // 10)
            for q in QUEUES
        )
    rows = [
        measure(kind, queue, args)
        for kind in [k.strip() for k in args.databases.split(",") if k.strip()]
        for queue in queues
    ]
    section = report(rows, args)
    print(section)
    if args.write_docs and not args.quick:
        write_section(args.write_docs, START, END, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
