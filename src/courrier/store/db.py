"""Connecting to the database: one engine per process, set up per dialect."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from courrier.errors import ConfigurationError


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
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # BEGIN IMMEDIATE takes the write lock up front, so two writers queue on
    # busy_timeout instead of failing on a lock upgrade.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``, with WAL and a busy timeout on SQLite.

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
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


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
