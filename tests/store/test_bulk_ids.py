"""Bulk inserts that give back their rows' new ids: the ids the rows were stored under."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine

from courrier.store.events import insert_events
from courrier.store.schema import events
from courrier.store.tenants import Tenant
from tests.store.conftest import NOW


def _rows(tenant: Tenant, keys: list[str]) -> list[dict[str, object]]:
    return [
        {
            "tenant_id": tenant.id,
            "type": "booking.created",
            "idempotency_key": key,
            "subject_id": None,
            "payload": {"key": key},
            "occurred_at": NOW,
            "received_at": NOW,
        }
        for key in keys
    ]


def _stored_ids(conn: Connection, tenant: Tenant) -> dict[str, int]:
    query = select(events.c.idempotency_key, events.c.id).where(events.c.tenant_id == tenant.id)
    return {key: event_id for key, event_id in conn.execute(query)}


def test_returned_ids_are_those_stored_in_row_order(engine: Engine, tenant: Tenant) -> None:
    with engine.begin() as conn:
        first = insert_events(conn, _rows(tenant, ["b", "a", "c"]))
        second = insert_events(conn, _rows(tenant, [f"k{i}" for i in range(700)]))
        alone = insert_events(conn, _rows(tenant, ["z"]))
        stored = _stored_ids(conn, tenant)
    assert first == [stored["b"], stored["a"], stored["c"]]
    assert second == [stored[f"k{i}"] for i in range(700)]
    assert alone == [stored["z"]]


def test_ids_stay_right_after_the_last_rows_are_deleted(engine: Engine, tenant: Tenant) -> None:
    """A deleted highest id may be given again (SQLite without AUTOINCREMENT): ids still match."""
    with engine.begin() as conn:
        insert_events(conn, _rows(tenant, ["a", "b", "c"]))
        conn.execute(delete(events).where(events.c.idempotency_key.in_(["b", "c"])))
        ids = insert_events(conn, _rows(tenant, ["d", "e"]))
        stored = _stored_ids(conn, tenant)
    assert ids == [stored["d"], stored["e"]]


def test_ids_stay_right_after_a_row_with_a_chosen_id(engine: Engine, tenant: Tenant) -> None:
    with engine.begin() as conn:
        conn.execute(events.insert(), {**_rows(tenant, ["far"])[0], "id": 10_000})
        ids = insert_events(conn, _rows(tenant, ["x", "y"]))
        stored = _stored_ids(conn, tenant)
    assert ids == [stored["x"], stored["y"]]


@pytest.mark.postgres_only
def test_two_transactions_inserting_at_once_each_get_their_own_rows_ids(
    engine: Engine, tenant: Tenant
) -> None:
    """Ids drawn from the sequence in turns by two open transactions are not in one run each,
    and each transaction still gets back the ids its own rows were stored under."""
    with engine.connect() as a, engine.connect() as b:
        a.begin(), b.begin()
        first_a = insert_events(a, _rows(tenant, [f"a{i}" for i in range(50)]))
        first_b = insert_events(b, _rows(tenant, [f"b{i}" for i in range(50)]))
        then_a = insert_events(a, _rows(tenant, [f"a{i}" for i in range(50, 100)]))
        a.commit(), b.commit()
    with engine.connect() as conn:
        stored = _stored_ids(conn, tenant)
    assert first_a + then_a == [stored[f"a{i}"] for i in range(100)]
    assert first_b == [stored[f"b{i}"] for i in range(50)]
    assert max(first_a) < min(first_b) < max(first_b) < min(then_a)  # interleaved, not in a run
