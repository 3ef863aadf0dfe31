"""Fixtures for the store tests: a tenant in a fresh database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from courrier.store.tenants import Tenant, create_tenant

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def tenant(engine: Engine) -> Tenant:
    with engine.begin() as conn:
        return create_tenant(conn, "Aéroclub du Lac", from_email="bookings@club.test", now=NOW)
