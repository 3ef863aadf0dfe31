"""SQLite: committed pages reach the database file through a thread of the engine's own.

A writer's commit only appends to the write-ahead log; the engine's
checkpoint thread copies the log into the database file shortly after, so
no intake or worker waits for that copy and its syncs after its commit.
"""

from __future__ import annotations

import gc
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from courrier.store.db import create_db_engine

pytestmark = pytest.mark.sqlite_only


def _threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "courrier-checkpoint"]


def _rows_in_file_alone(db_file: Path, tmp_path: Path) -> int:
    """The rows a copy of the database file holds without its log (what was checkpointed)."""
    alone = tmp_path / "alone.db"
    shutil.copyfile(db_file, alone)
    conn = sqlite3.connect(alone)
    try:
        return int(conn.execute("SELECT count(*) FROM log").fetchone()[0])
    except sqlite3.OperationalError:  # not even the table yet
        return -1
    finally:
        conn.close()


def _wait_for(predicate, seconds: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_committed_rows_reach_the_database_file_without_a_writer_checkpointing(
    tmp_path: Path,
) -> None:
    db_file = tmp_path / "c.db"
    engine = create_db_engine(f"sqlite:///{db_file}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE log (n INTEGER)"))
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO log VALUES (1), (2), (3)"))
        # Far below the writers' own automatic checkpoint: only the thread copies them.
        assert _wait_for(lambda: _rows_in_file_alone(db_file, tmp_path) == 3)
    finally:
        engine.dispose()


def test_dispose_stops_the_thread_and_the_next_commit_starts_another(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'd.db'}")
    before = len(_threads())
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE log (n INTEGER)"))
    assert len(_threads()) == before + 1
    engine.dispose()
    assert _wait_for(lambda: len(_threads()) == before)
    with engine.begin() as conn:  # an engine is still usable after dispose()
        conn.execute(text("INSERT INTO log VALUES (1)"))
    assert len(_threads()) == before + 1
    engine.dispose()
    assert _wait_for(lambda: len(_threads()) == before)


def test_an_engine_dropped_without_dispose_leaves_no_thread_behind(tmp_path: Path) -> None:
    before = len(_threads())
    engine = create_db_engine(f"sqlite:///{tmp_path / 'dropped.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE log (n INTEGER)"))
    assert len(_threads()) == before + 1
    del engine, conn
    gc.collect()
    assert _wait_for(lambda: len(_threads()) == before)


def test_a_uri_database_gets_no_thread_that_would_open_it_without_its_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread would open the path alone, without the URI's options (mode=ro...)."""
    monkeypatch.chdir(tmp_path)
    engine = create_db_engine("sqlite:///file:u.db?uri=true")  # relative to tmp_path
    before = len(_threads())
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE log (n INTEGER)"))
        assert len(_threads()) == before
    finally:
        engine.dispose()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u.db"]  # and no file named "file:..."
