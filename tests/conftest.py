"""Fixtures on real parts: a migrated database (SQLite or PostgreSQL) and an SMTP server.

The suite runs once per database: ``COURRIER_TEST_DATABASE=sqlite`` (default)
or ``postgres``. On PostgreSQL the tests create their own database on
``COURRIER_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``)
and drop it at the end.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from courrier.clock import ManualClock
from courrier.settings import Settings
from courrier.store.db import create_db_engine, normalise_url
from courrier.store.migrate import migrate
from courrier.store.schema import metadata
from tests.support.services import missing
from tests.support.smtp import SmtpServer

DATABASE = os.environ.get("COURRIER_TEST_DATABASE", "sqlite")
PG_ADMIN_URL = os.environ.get(
    "COURRIER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def pytest_report_header() -> str:
    return f"courrier database: {DATABASE}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out tests of the other database: each runs in its own pass, none is skipped."""
    other = "sqlite_only" if DATABASE == "postgres" else "postgres_only"
    kept = [item for item in items if other not in item.keywords]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if other in item.keywords])
        items[:] = kept


@pytest.fixture(scope="session")
def _database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database made once per session: a SQLite file, or a PostgreSQL database."""
    if DATABASE == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        engine = create_db_engine(f"sqlite:///{path}")
        migrate(engine)
        engine.dispose()
        yield str(path)
        return
    name = f"courrier_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any failure means the server is not usable
        reason = exc.__class__.__name__
        missing("PostgreSQL", f"start it on 127.0.0.1:5432 with trust auth ({reason})")
    admin_url = make_url(normalise_url(PG_ADMIN_URL))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    engine = create_db_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(_database_template: str, tmp_path: Path) -> str:
    """A fresh, migrated, empty database for one test."""
    if DATABASE == "sqlite":
        path = tmp_path / "courrier.db"
        shutil.copyfile(_database_template, path)
        return f"sqlite:///{path}"
    engine = create_db_engine(_database_template)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return _database_template


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test moves it; modules that need another start
    (a Monday, a time near the real one) define their own."""
    return ManualClock()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on loopback that records what it accepts."""
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def settings(database_url: str, smtp_server: SmtpServer, tmp_path: Path) -> Settings:
    """Settings for one test: its own database, the test SMTP server, fast retries."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        smtp_url=smtp_server.url,  # type: ignore[arg-type]
        secret_key="test-secret-key",  # type: ignore[arg-type]
        base_url="http://courrier.test",
        retry_base_seconds=1.0,
        retry_max_seconds=2.0,
        poll_seconds=0.2,
    )
