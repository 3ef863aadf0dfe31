"""A tenant's staff, as planning reads them for every batch of events: its own, and only them."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Executable

from courrier.engine import digest
from courrier.store import directory
from courrier.store.contacts import ContactData, upsert_contact
from courrier.store.tenants import Tenant, create_tenant
from tests.store.conftest import NOW, add_members


def staff(conn: Connection, tenant: Tenant, external_id: str, **data: Any) -> None:
    upsert_contact(
        conn, tenant.id, external_id, ContactData(email=f"{external_id}@x.test", **data), now=NOW
    )


def test_the_directory_holds_the_tenants_staff_and_no_one_elses(
    engine: Engine, tenant: Tenant
) -> None:
    with engine.begin() as conn:
        other = create_tenant(conn, "Club voisin", from_email="b@voisin.test", now=NOW)
        staff(conn, tenant, "member")
        staff(conn, tenant, "chief", staff_profiles=["instructor", "mechanic"])
        staff(conn, tenant, "desk", booking_copy="each")
        staff(conn, tenant, "owner", booking_copy="digest", staff_profiles=["instructor"])
        staff(conn, tenant, "former", staff_profiles=["mechanic"], booking_copy="each")
        staff(conn, tenant, "former", staff_profiles=[], booking_copy="off")  # no longer staff
        staff(conn, other, "their-chief", staff_profiles=["instructor"], booking_copy="digest")
        found = directory.staff_directory(conn, tenant.id)
        read = [c["external_id"] for c in digest._digest_staff(conn, tenant.id, None)]
        known = [c["external_id"] for c in digest._digest_staff(conn, tenant.id, found)]
    assert found.staff_by_profile == {"instructor": ["chief", "owner"], "mechanic": ["chief"]}
    assert found.booking_copy == {"each": ["desk"], "digest": ["owner"]}
    assert read == known == ["owner"]  # read by the digest, or taken from the directory


def test_the_staff_look_ups_read_only_the_staff(engine: Engine, tenant: Tenant) -> None:
    """Among thousands of members, planning's look-ups of the staff search the index that
    holds only them, so a batch of events costs the same with 100 members or 100,000."""
    with engine.begin() as conn:
        staff(conn, tenant, "chief", staff_profiles=["instructor"], booking_copy="digest")
        add_members(conn, tenant, 3000)
        conn.execute(text("ANALYZE"))
    with engine.begin() as conn:
        for statement in (directory._STAFF(conn), digest._DIGEST_STAFF(conn)):
            assert plan_of(conn, statement, tenant=tenant.id) == "ix_contacts_staff"


def plan_of(conn: Connection, statement: Executable, **params: Any) -> str:
    """How the database reads ``contacts`` for ``statement``: the index's name, or "scan"."""
    compiled = statement.compile(dialect=conn.dialect)
    values = compiled.construct_params(params)
    if conn.dialect.name == "sqlite":
        bound = tuple(values[name] for name in compiled.positiontup or ())
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), bound).fetchall()
        [detail] = [str(row[-1]) for row in rows if "contacts" in str(row[-1])]
        return detail.split("USING INDEX ")[1].split()[0] if "USING INDEX" in detail else "scan"
    [[plan]] = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), values)
    node = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    while "Index Name" not in node and node.get("Plans"):
        node = node["Plans"][0]
    return str(node.get("Index Name", "scan"))
