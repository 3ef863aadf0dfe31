"""The migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from courrier.store.migrate import current_revision, head_revision
from courrier.store.schema import metadata


def test_migrated_database_is_at_the_newest_revision(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()


def test_migrations_match_the_declared_schema(engine: Engine) -> None:
    """A table or column added to schema.py without a migration fails here."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(context, metadata)
    assert diff == []
