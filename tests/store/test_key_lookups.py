"""Intake's look-ups by unique key walk the key's index once per value, statistics or not.

A database holding rows it has not analysed yet (a new one, or a tenant's
first bulk import, until autovacuum comes by) gives PostgreSQL no idea how
many rows a tenant has. The plan it then keeps for a prepared statement of
``key = ANY(:keys)`` read every row of the tenant and compared each with
every value. These tests look at that kept ("generic") plan, made here
from a fresh table's rows (and the same once it is analysed).
"""

from __future__ import annotations

import json
import re
from typing import Any

import psycopg
import psycopg.sql
import pytest
from sqlalchemy import Executable, insert
from sqlalchemy.engine import Connection, Engine

from courrier.store import contacts as contact_store
from courrier.store import events as event_store
from courrier.store import subjects as subject_store
from courrier.store.schema import events, subjects
from courrier.store.tenants import Tenant
from tests.store.conftest import NOW, add_members

pytestmark = pytest.mark.postgres_only

ROWS = 1500


def generic_plan(conn: Connection, statement: Executable, params: dict[str, Any]) -> str:
    """The plan PostgreSQL keeps for ``statement`` once prepared, as JSON text."""
    compiled = str(statement.compile(dialect=conn.dialect))
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
    conn.exec_driver_sql("PREPARE lookup AS " + re.sub(r"%\((\w+)\)s", number, compiled))
    raw = conn.connection.dbapi_connection
    values = ", ".join(psycopg.sql.Literal(params[n]).as_string(raw) for n in names)
    [[plan]] = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) EXECUTE lookup({values})")
    conn.exec_driver_sql("DEALLOCATE lookup")
    return plan if isinstance(plan, str) else json.dumps(plan)


def probes_the_unique_index(plan: str, index: str, column: str) -> bool:
    """Whether the plan looks each value up in ``index``, the value in its condition."""
    nodes: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        nodes.append(node)
        for child in node.get("Plans", ()):
            walk(child)

    walk(json.loads(plan)[0]["Plan"])
    return any(
        node.get("Index Name") == index
        and f"{column} = keyed.value" in re.sub(r"[()]|::text", "", node.get("Index Cond", ""))
        for node in nodes
    )


@pytest.fixture
def rows_never_analysed(engine: Engine, tenant: Tenant) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(events),
            [
                {
                    "tenant_id": tenant.id,
                    "type": "booking.created",
                    "idempotency_key": f"k-{n}",
                    "payload": {},
                    "occurred_at": NOW,
                    "received_at": NOW,
                }
                for n in range(ROWS)
            ],
        )
        conn.execute(
            insert(subjects),
            [
                {
                    "tenant_id": tenant.id,
                    "type": "booking",
                    "external_id": f"B-{n}",
                    "state": {},
                    "version": 1,
                    "updated_at": NOW,
                }
                for n in range(ROWS)
            ],
        )
        add_members(conn, tenant, ROWS)


@pytest.mark.usefixtures("rows_never_analysed")
def test_events_are_found_by_key_through_their_unique_index(engine: Engine, tenant: Tenant) -> None:
    with engine.begin() as conn:
        plan = generic_plan(
            conn,
            event_store._BY_KEYS(conn),
            {"tenant": tenant.id, "keys": [f"k-{n}" for n in range(0, ROWS, 3)]},
        )
        assert probes_the_unique_index(
            plan, "uq_events_tenant_id_idempotency_key", "idempotency_key"
        ), plan
        found = event_store.stored_answers(conn, tenant.id, ["k-3", "k-1499", "k-absent"])
    assert sorted(found) == ["k-1499", "k-3"]


@pytest.mark.usefixtures("rows_never_analysed")
def test_subjects_are_found_by_key_through_their_unique_index(
    engine: Engine, tenant: Tenant
) -> None:
    with engine.begin() as conn:
        plan = generic_plan(
            conn,
            subject_store._BY_KEYS(conn),
            {"tenant": tenant.id, "type": "booking", "ids": ["B-1", "B-2"]},
        )
        assert probes_the_unique_index(
            plan, "uq_subjects_tenant_id_type_external_id", "external_id"
        ), plan
        found = subject_store.subjects_by_key(conn, tenant.id, [("booking", "B-7")])
    assert [s.external_id for s in found.values()] == ["B-7"]


@pytest.mark.usefixtures("rows_never_analysed")
def test_recipients_are_found_by_external_id_through_their_unique_index(
    engine: Engine, tenant: Tenant
) -> None:
    with engine.begin() as conn:
        plan = generic_plan(
            conn, contact_store._RECIPIENTS(conn), {"tenant": tenant.id, "ids": ["m-1", "m-2"]}
        )
        assert probes_the_unique_index(plan, "uq_contacts_tenant_id_external_id", "external_id"), (
            plan
        )
        found = contact_store.recipients_by_external_id(conn, tenant.id, ["m-5", "nobody"])
    assert list(found) == ["m-5"]
