"""Connecting to the database: one engine per process, set up per dialect."""

from __future__ import annotations

import select
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, OperationalError

from courrier.errors import ConfigurationError
from courrier.store.checkpoints import AUTOMATIC_PAGES, LOG_SIZE_LIMIT, Checkpointer


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for ``postgresql://`` URLs."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    # Autocommit at the driver level; SQLAlchemy's begin() emits BEGIN below.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # No busy wait inside SQLite: _sqlite_begin waits for the write lock itself.
    cur.execute("PRAGMA busy_timeout=0")
    # A thread of the engine's checkpoints (store.checkpoints); writers only past this.
    cur.execute(f"PRAGMA wal_autocheckpoint={AUTOMATIC_PAGES}")
    # The writer that starts the log over cuts a larger file back to this.
    cur.execute(f"PRAGMA journal_size_limit={LOG_SIZE_LIMIT}")
    cur.close()


#: how long a transaction waits for another connection's write lock before giving up
WRITE_LOCK_TIMEOUT = 30.0
#: how often a waiting transaction tries again
WRITE_LOCK_POLL = 0.0005


#: the execution option :func:`_begin_writing` sets on the connections of ``engine.begin()``
WRITES = "courrier_writes"


def _sqlite_begin(conn: Any) -> None:
    """A transaction of ``engine.begin()``: BEGIN IMMEDIATE; any other: a plain BEGIN.

    ``engine.begin()`` is how Courrier writes: its transaction takes the
    write lock up front, waiting for it in short steps, so two writers
    queue instead of failing on a lock upgrade. SQLite's own busy handler
    would sleep 1, 2, 5, ... then 100 ms between tries, so a writer that
    waits behind a busy one (intake's next batch, a worker's next claim)
    almost never finds the few milliseconds between the other's commit and
    its next BEGIN: trying every half millisecond lets the intake and the
    workers take turns.

    :func:`read_only` (``engine.connect()``) is how Courrier reads (the API's key check and its
    GET routes, the dispatcher's look at the next due time): a deferred
    BEGIN reads a snapshot in WAL mode without taking or waiting for the
    write lock, so reads never queue behind a writer's batch.
    """
    raw = conn.connection.driver_connection
    if not conn.get_execution_options().get(WRITES):
        raw.execute("BEGIN")
        return
    deadline = 0.0
    while True:
        try:
            raw.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _locked(exc):
                break
        now = time.monotonic()
        if not deadline:
            deadline = now + WRITE_LOCK_TIMEOUT
        elif now > deadline:
            break
        time.sleep(WRITE_LOCK_POLL)
    # Once more through SQLAlchemy, so that a failure is its usual wrapped error.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def _begin_writing(engine: Engine, turns: threading.Lock) -> Iterator[Connection]:
    """``engine.begin()`` of a SQLite engine: a connection marked as writing, in a transaction.

    The engine's writers take turns on ``turns`` first, so threads of one
    process (``courrier serve``: the API's intake and the dispatcher) wait
    for each other asleep instead of trying SQLite's write lock every half
    millisecond, each try taking the interpreter lock from the thread that
    holds the write lock. Other processes still wait in :func:`_sqlite_begin`.
    """
    if not turns.acquire(timeout=WRITE_LOCK_TIMEOUT):
        raise OperationalError(
            "BEGIN IMMEDIATE",
            None,
            sqlite3.OperationalError("database is locked (by a writer of this process)"),
        )
    try:
        with engine.connect() as conn:
            conn.execution_options(**{WRITES: True})
            with conn.begin():
                yield conn
    finally:
        turns.release()


@contextmanager
def read_only(engine: Engine) -> Iterator[Connection]:
    """A connection to read with: on PostgreSQL in autocommit, on SQLite one read transaction.

    On PostgreSQL, each statement of the block is a transaction of its own,
    as each already saw the data committed when it started (READ COMMITTED,
    the server's default and Courrier's): a block no longer pays the round
    trips of BEGIN and COMMIT (two of the four a key check made), and holds
    no transaction open while Python works
    between its statements, so VACUUM is never held back by a slow read.
    Nor is the block ended by a ROLLBACK, at which psycopg forgets every
    prepared statement of the connection (in case it undid a table they
    name): with the API checking a key so at every request, none of its
    statements would stay prepared. The pool sets the connection back to
    transactions when it is returned (no round trip: psycopg sends BEGIN
    itself before the next statement).

    On SQLite the block is one transaction, one snapshot, ended by a
    rollback: the driver keeps its statements either way, and every commit
    counts towards the WAL's checkpoints (:mod:`courrier.store.checkpoints`).
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


def _locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; on SQLite with WAL, and writers that wait their turn.

    A malformed URL or a missing SQLite folder raises :class:`ConfigurationError`
    with one line saying what to fix.
    """
    try:
        parsed = make_url(normalise_url(url))
    except ArgumentError as exc:
        raise ConfigurationError(f"COURRIER_DATABASE_URL is not a database URL: {url!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            folder = Path(database).expanduser().resolve().parent
            if not folder.is_dir():
                raise ConfigurationError(
                    f"COURRIER_DATABASE_URL points into {folder}, which does not exist: create it or change the URL"
                )
        engine = create_engine(parsed, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        # engine.begin(), whose transactions write, marks its connections (see _sqlite_begin)
        setattr(engine, "begin", partial(_begin_writing, engine, threading.Lock()))  # noqa: B010
        # a plain file: not in memory, nor a URI with options of its own (mode=ro...)
        plain_file = database not in ("", ":memory:") and not database.startswith("file:")
        if plain_file and not parsed.query:
            _checkpoint_in_background(engine, database)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    if parsed.get_driver_name() not in ("psycopg", "psycopg2"):  # the socket known to these
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **kwargs)
    engine = create_engine(parsed, **kwargs)
    event.listen(engine, "checkout", _closed_by_server)
    return engine


def _closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled connection that the server closed, or is closing, while it was idle.

    Nothing reaches an idle connection unasked: if its socket is readable,
    the server has said goodbye (a restart, ``pg_terminate_backend``, an
    idle timeout: a FATAL message, then the end of the stream). The pool
    then discards it and opens another (up to three tries, then the error
    of the last). SQLAlchemy's ``pool_pre_ping`` finds the same with a
    ``SELECT 1`` at every checkout: a round trip, 67 us of CPU and 100 of
    waiting, twice for each event posted alone; this look costs 2 us. A
    connection that dies silently (a dropped network path) is found by
    neither before its first statement fails.
    """
    try:
        socket = dbapi_connection.fileno()
    except Exception as exc:  # closed on this side already
        raise DisconnectionError("the pooled connection is closed") from exc
    poller = select.poll()
    poller.register(socket, select.POLLIN | select.POLLPRI)
    if poller.poll(0):  # data, or the end of the stream, or an error
        raise DisconnectionError("the server closed this pooled connection")


def _checkpoint_in_background(engine: Engine, path: str) -> None:
    """Give the engine a :class:`Checkpointer`, woken by commits and stopped by ``dispose()``."""
    checkpointer = Checkpointer(path)
    event.listen(engine, "commit", lambda _conn: checkpointer.committed())
    event.listen(engine, "engine_disposed", lambda _engine: checkpointer.close())
    weakref.finalize(engine, checkpointer.close)  # an engine dropped without dispose()


def check_connection(engine: Engine) -> None:
    """Connect once; a failure becomes one line saying what to fix."""
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigurationError(
            f"cannot reach the database at {engine.url.render_as_string(hide_password=True)}: {reason}"
        ) from exc
