"""Bulk inserts of rows of several shapes: each row keeps what it gives, the rest take defaults."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from courrier.store.bulk import insert_rows
from courrier.store.schema import tenant_kinds
from courrier.store.tenants import Tenant
from tests.store.conftest import NOW


@pytest.mark.parametrize("count", [1, 3, 20])  # one INSERT, a multi-row INSERT, COPY
def test_rows_of_two_shapes_in_turn_each_keep_theirs_and_default_the_rest(
    engine: Engine, tenant: Tenant, count: int
) -> None:
    """The same table, rows that give ``definition`` and rows that leave it (and ``enabled``)
    out, one after the other: what a row gives is stored, a left-out column its default."""
    full = [
        {
            "tenant_id": tenant.id,
            "name": f"full.{count}.{n}",
            "enabled": False,
            "definition": {"n": n},
            "updated_at": NOW,
        }
        for n in range(count)
    ]
    bare = [
        {"tenant_id": tenant.id, "name": f"bare.{count}.{n}", "updated_at": NOW}
        for n in range(count)
    ]
    with engine.begin() as conn:
        insert_rows(conn, tenant_kinds, full)
        insert_rows(conn, tenant_kinds, bare)
        insert_rows(conn, tenant_kinds, [{**row, "name": row["name"] + ".again"} for row in full])
        query = select(tenant_kinds.c.name, tenant_kinds.c.enabled, tenant_kinds.c.definition)
        stored = {name: (enabled, definition) for name, enabled, definition in conn.execute(query)}
    for n in range(count):
        assert stored[f"full.{count}.{n}"] == (False, {"n": n})
        assert stored[f"full.{count}.{n}.again"] == (False, {"n": n})
        assert stored[f"bare.{count}.{n}"] == (True, {})
