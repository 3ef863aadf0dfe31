"""Reads on PostgreSQL: prepared statements kept (the API checks a key at every request), no
transaction held open, and the pooled connection back to transactions afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection, Engine

from courrier.store.db import create_db_engine, read_only
from courrier.store.schema import tenants
from courrier.store.tenants import Tenant, tenant_for_key

pytestmark = pytest.mark.postgres_only

UNKNOWN_KEY = "ck_abcdefgh" + "x" * 32


@pytest.fixture
def one_connection(database_url: str) -> Iterator[Engine]:
    """An engine of a single pooled connection, so that every block gets the same one."""
    engine = create_db_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def prepared(conn: Connection) -> list[str]:
    return list(conn.execute(text("SELECT statement FROM pg_prepared_statements")).scalars())


def test_a_key_checked_again_and_again_is_planned_once_then_kept(one_connection: Engine) -> None:
    for _ in range(8):  # psycopg prepares a statement at its fifth run on a connection
        with read_only(one_connection) as conn:
            assert tenant_for_key(conn, UNKNOWN_KEY) is None
    with read_only(one_connection) as conn:
        assert any("api_keys" in statement for statement in prepared(conn))


def test_a_read_closed_by_rollback_would_lose_them(one_connection: Engine) -> None:
    """Why read_only commits: psycopg forgets a connection's prepared statements at a rollback."""
    for _ in range(8):
        with read_only(one_connection) as conn:
            tenant_for_key(conn, UNKNOWN_KEY)
    with one_connection.connect() as conn:  # ends in ROLLBACK
        tenant_for_key(conn, UNKNOWN_KEY)
    with read_only(one_connection) as conn:
        assert prepared(conn) == []


def test_a_read_holds_no_transaction_open_between_its_statements(
    one_connection: Engine, engine: Engine
) -> None:
    """Seen by the server, a read's connection is idle between statements, not idle in a
    transaction (which would hold VACUUM back while Python works)."""
    with read_only(one_connection) as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as other:
            state = other.execute(
                text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).scalar_one()
    assert state == "idle"


def test_a_connection_read_with_writes_in_one_transaction_again(
    one_connection: Engine, tenant: Tenant
) -> None:
    """The read's autocommit ends with it: the same pooled connection's next write is one
    transaction again, undone whole when it fails."""
    with read_only(one_connection) as conn:
        assert tenant_for_key(conn, UNKNOWN_KEY) is None
    with pytest.raises(RuntimeError), one_connection.begin() as conn:
        conn.execute(
            update(tenants)
            .where(tenants.c.id == tenant.id)
            .values(name="Renamed in a failed write")
        )
        raise RuntimeError("the write fails after its first statement")
    with read_only(one_connection) as conn:
        name = conn.execute(select(tenants.c.name).where(tenants.c.id == tenant.id)).scalar_one()
    assert name == tenant.name
