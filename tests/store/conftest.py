"""Fixtures for the store tests: a tenant in a fresh database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Connection, Engine

from courrier.store.schema import contacts
from courrier.store.tenants import Tenant, create_tenant

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def tenant(engine: Engine) -> Tenant:
    with engine.begin() as conn:
        return create_tenant(conn, "Aéroclub du Lac", from_email="bookings@club.test", now=NOW)


def add_members(conn: Connection, tenant: Tenant, count: int) -> None:
    """``count`` plain members (``m-0``, ``m-1``...): no address, no staff profile, in one insert."""
    conn.execute(
        insert(contacts),
        [
            {
                "tenant_id": tenant.id,
                "external_id": f"m-{n}",
                "roles": ["member"],
                "staff_profiles": [],
                "created_at": NOW,
                "updated_at": NOW,
            }
            for n in range(count)
        ],
    )
