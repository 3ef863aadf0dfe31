"""Bulk inserts of rows of several shapes: each row keeps what it gives, the rest take defaults."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from courrier.store.bulk import insert_rows, json_object, json_text
from courrier.store.schema import captured_mails, tenant_kinds
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


@pytest.mark.parametrize("count", [1, 3, 20])
def test_json_encoded_beforehand_is_stored_as_the_value_it_encodes(
    engine: Engine, tenant: Tenant, count: int
) -> None:
    """A value encoded once for several rows (a subject's state) is stored as that JSON
    value, not as a JSON string holding its text, whichever way the rows go."""
    with engine.begin() as conn:
        state = json_text(conn, {"start": "2026-03-01T09:00:00+00:00", "who": ["Zoé", None]})
        rows = [
            {
                "tenant_id": tenant.id,
                "name": f"encoded.{count}.{n}",
                "definition": json_object(conn, {"state": state, "n": n}),
                "updated_at": NOW,
            }
            for n in range(count)
        ]
        insert_rows(conn, tenant_kinds, rows)
        query = select(tenant_kinds.c.name, tenant_kinds.c.definition).where(
            tenant_kinds.c.name.startswith(f"encoded.{count}.")
        )
        stored = {name: definition for name, definition in conn.execute(query)}
    expected = {"start": "2026-03-01T09:00:00+00:00", "who": ["Zoé", None]}
    assert stored == {f"encoded.{count}.{n}": {"state": expected, "n": n} for n in range(count)}


@pytest.mark.parametrize("count", [1, 3, 20])
def test_bytes_nulls_and_instants_come_back_as_given(engine: Engine, count: int) -> None:
    """Every kind of value a bulk insert carries: raw bytes (any byte, not UTF-8), an
    absent reference (NULL), a JSON list, text with tabs and line ends, an instant."""
    raw = bytes(range(256)) + b"\r\n.\r\n\\N\t"
    rows = [
        {
            "tenant_id": None,
            "message_id_header": f"<bulk.{count}.{n}@club.test>",
            "envelope_from": None,
            "recipients": ["a@club.test", f"b{n}@club.test"],
            "subject_line": f"Line\\one\tand\r\nline two \\N {n}",
            "raw": raw + bytes([n]),
            "received_at": NOW,
        }
        for n in range(count)
    ]
    with engine.begin() as conn:
        insert_rows(conn, captured_mails, rows)
        query = select(captured_mails).where(
            captured_mails.c.message_id_header.startswith(f"<bulk.{count}.")
        )
        stored = [dict(row._mapping) for row in conn.execute(query)]
    by_header = {row.pop("message_id_header"): row for row in stored}
    assert all(row.pop("id") for row in by_header.values())
    assert by_header == {row.pop("message_id_header"): row for row in rows}
