"""The pool on PostgreSQL: a connection the server closed is replaced at checkout, and a
healthy one is handed out without asking the server anything."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from courrier.store.db import create_db_engine

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def one_connection(database_url: str) -> Iterator[Engine]:
    """An engine of a single pooled connection, so that every block gets the same one."""
    engine = create_db_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def backend(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def last_statement(engine: Engine, pid: int) -> str:
    with engine.connect() as conn:
        query = text("SELECT query FROM pg_stat_activity WHERE pid = :pid")
        return str(conn.execute(query, {"pid": pid}).scalar_one())


@pytest.mark.parametrize("how", ["terminated", "idle too long"])
def test_a_pooled_connection_the_server_closed_is_replaced_unnoticed(
    one_connection: Engine, engine: Engine, how: str
) -> None:
    """What a restart of the server, an administrator or ``idle_session_timeout`` does to
    the pool's idle connections: the next request gets a new one instead of an error."""
    pid = backend(one_connection)
    if how == "terminated":
        with engine.connect() as admin:
            stopped = admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
            assert stopped.scalar_one() is True
    else:
        with one_connection.connect() as conn:
            conn.execute(text("SET idle_session_timeout = 50"))  # ms; kept by the session
            conn.commit()
        with engine.connect() as watch:
            gone = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
            for _ in range(200):
                if watch.execute(gone, {"pid": pid}).scalar_one() == 0:
                    break
                watch.rollback()
                watch.execute(text("SELECT pg_sleep(0.02)"))
            else:
                pytest.fail("the idle session was not closed by the server")
    assert backend(one_connection) != pid


def test_a_healthy_pooled_connection_is_handed_out_without_a_round_trip(
    one_connection: Engine, engine: Engine
) -> None:
    """No ``SELECT 1`` before each use (SQLAlchemy's pre-ping): the server's last statement
    on the connection is still the previous user's."""
    with one_connection.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid() /* the last one */")).scalar_one()
        conn.commit()
    for _ in range(3):
        with one_connection.connect():
            pass
    assert last_statement(engine, pid) == "COMMIT"
    with one_connection.connect() as conn:
        conn.execute(text("SELECT 'used'"))
    assert last_statement(engine, pid) == "ROLLBACK"
