"""Bring a database to the newest schema with Alembic, on SQLite or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from courrier.store.db import WRITES

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` (default: newest), in one transaction.

    On SQLite, foreign keys are off while the migrations run, as Alembic's
    batch mode needs: it rebuilds a table to change it, and dropping the old
    table with foreign keys on would delete, by cascade, every row that
    refers to it (migration 0004 rebuilt ``messages`` that way, and took
    every timeline with it). Before the commit, SQLite checks that every
    reference still holds; foreign keys are on again before the connection
    goes back to the pool.
    """
    config = alembic_config()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        raw = connection.connection.driver_connection
        assert raw is not None  # a connection just checked out of the pool
        if sqlite:  # outside any transaction, where SQLite reads this pragma
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            connection.execution_options(**{WRITES: True})
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if sqlite:
                    _references_hold(connection)
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


def _references_hold(connection: Connection) -> None:
    """Raise (and so roll back) if a migration left a row referring to nothing."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        table, rowid, parent, _ = broken[0]
        raise RuntimeError(
            f"migration left {len(broken)} broken references ({table} row {rowid} -> {parent})"
        )


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
