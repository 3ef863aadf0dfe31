"""SQLite: writers take turns on the write lock instead of one starving the others.

Intake writes a batch of events in one transaction, then starts the next;
a worker needs the same lock for each claim. The engine waits for the lock
itself, trying again every half millisecond, so a writer queued behind a
busy one gets in during the short gap between the other's commit and its
next BEGIN; SQLite's own busy handler, sleeping up to 100 ms between tries,
would almost always miss that gap.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from courrier.store import db
from courrier.store.db import create_db_engine

pytestmark = pytest.mark.sqlite_only

#: the busy writer's transactions: held this long, with this gap before the next BEGIN
HELD, GAP, ROUNDS = 0.1, 0.002, 12


def _table(url: str) -> None:
    engine = create_db_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE log (who TEXT, round INTEGER)"))
    engine.dispose()


def test_a_writer_behind_a_busy_one_gets_in_between_its_transactions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    _table(url)
    busy_engine, other_engine = create_db_engine(url), create_db_engine(url)
    started = threading.Event()

    def busy() -> None:  # like intake writing batch after batch
        for round_ in range(ROUNDS):
            with busy_engine.begin() as conn:
                conn.execute(text("INSERT INTO log VALUES ('busy', :r)"), {"r": round_})
                started.set()
                time.sleep(HELD)
            time.sleep(GAP)

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        assert started.wait(5)
        with other_engine.begin() as conn:  # like a worker's claim
            done = conn.execute(text("SELECT count(*) FROM log WHERE who = 'busy'")).scalar_one()
            conn.execute(text("INSERT INTO log VALUES ('other', :r)"), {"r": done})
    finally:
        thread.join()
        busy_engine.dispose()
        other_engine.dispose()
    # The other writer went in at one of the first gaps, not after the busy one was done.
    assert done < ROUNDS // 2


def test_a_writer_gives_up_with_database_locked_after_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "WRITE_LOCK_TIMEOUT", 0.2)
    url = f"sqlite:///{tmp_path / 'held.db'}"
    _table(url)
    holder = sqlite3.connect(tmp_path / "held.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    engine = create_db_engine(url)
    try:
        started = time.monotonic()
        with (
            pytest.raises(OperationalError, match="database is locked"),
            engine.begin() as conn,
        ):
            conn.execute(text("INSERT INTO log VALUES ('late', 0)"))
        assert time.monotonic() - started >= 0.2
    finally:
        holder.rollback()
        holder.close()
        engine.dispose()
    with create_db_engine(url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM log")).scalar_one() == 0


def test_a_read_answers_at_once_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    """engine.connect() reads a snapshot: the API's key check and GET routes never queue behind
    intake's batch or a worker's claim (engine.begin() transactions)."""
    url = f"sqlite:///{tmp_path / 'reads.db'}"
    _table(url)
    engine = create_db_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO log VALUES ('before', 0)"))
        with engine.begin() as writer:  # holds the write lock until the end of the block
            writer.execute(text("INSERT INTO log VALUES ('uncommitted', 1)"))
            started = time.monotonic()
            with engine.connect() as reader:
                seen = reader.execute(text("SELECT who FROM log")).scalars().all()
            assert time.monotonic() - started < 0.5
        assert seen == ["before"]  # the committed state, not the writer's rows in progress
        with engine.connect() as reader:
            assert reader.execute(text("SELECT count(*) FROM log")).scalar_one() == 2
    finally:
        engine.dispose()


def test_threads_of_one_process_take_turns_without_polling_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """courrier serve's intake and dispatcher share one engine: a writer waiting for the other
    sleeps on the engine's own lock and gets in as soon as the other commits."""
    monkeypatch.setattr(db, "WRITE_LOCK_POLL", 0.5)  # SQLite's lock alone: 0.5 s late at best
    url = f"sqlite:///{tmp_path / 'threads.db'}"
    _table(url)
    engine = create_db_engine(url)
    holding = threading.Event()
    ended: list[float] = []

    def writer() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO log VALUES ('first', 0)"))
            holding.set()
            time.sleep(0.2)
        ended.append(time.monotonic())

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(5)
        with engine.begin() as conn:
            got_in = time.monotonic()
            conn.execute(text("INSERT INTO log VALUES ('second', 1)"))
    finally:
        thread.join()
        engine.dispose()
    assert got_in - ended[0] < 0.2
