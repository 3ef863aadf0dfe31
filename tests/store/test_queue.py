"""The queue's claim and next wake-up against a real database: what is taken, in which
order, and that a claim reads only the waiting messages' indexes, whatever else is stored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from courrier.clock import ManualClock
from courrier.store import queue
from tests.support import factories

LEASE = timedelta(seconds=60)
MINUTE = timedelta(minutes=1)


def one(conn: Connection, tenant_id: int, now: Any, **row: Any) -> int:
    [message_id] = factories.insert_messages(conn, tenant_id, 1, now=now, **row)
    return message_id


def test_a_claim_takes_the_most_urgent_of_the_due_the_planned_and_the_expired_together(
    engine: Engine,
) -> None:
    now = ManualClock()()
    minute = timedelta(minutes=1)
    with engine.begin() as conn:
        tenant = factories.insert_tenant(conn, now=now)
        due_low = one(conn, tenant, now, priority=10, due_at=now - minute)
        planned_high = one(conn, tenant, now, status="planned", priority=90, due_at=now)
        expired_mid = one(
            conn,
            tenant,
            now,
            status="sending",
            priority=50,
            due_at=now - 2 * minute,
            lease_owner="dead-worker",
            lease_until=now - timedelta(seconds=1),
        )
        due_mid_later = one(conn, tenant, now, priority=50, due_at=now)
        # not claimable: a retry waiting, a reminder for later, a lease still held, an SMS
        one(conn, tenant, now, priority=100, due_at=now + minute)
        one(conn, tenant, now, status="planned", priority=100, due_at=now + minute)
        one(conn, tenant, now, status="sending", lease_owner="busy", lease_until=now + minute)
        one(conn, tenant, now, channel="sms", priority=100)
    with engine.begin() as conn:
        claimed = queue.claim_due(
            conn, now=now, worker_id="worker-a", lease_until=now + LEASE, limit=3
        )
    assert [c.id for c in claimed] == [planned_high, expired_mid, due_mid_later]
    assert [c.previous_status.value for c in claimed] == ["planned", "sending", "due"]
    assert claimed[1].taken_over and claimed[1].previous_owner == "dead-worker"
    with engine.begin() as conn:
        rest = queue.claim_due(
            conn, now=now, worker_id="worker-a", lease_until=now + LEASE, limit=3
        )
    assert [c.id for c in rest] == [due_low]


def test_of_the_planned_messages_whose_time_has_come_the_most_urgent_go_first(
    engine: Engine,
) -> None:
    now = ManualClock()()
    with engine.begin() as conn:
        tenant = factories.insert_tenant(conn, now=now)
        early_low = one(conn, tenant, now, status="planned", priority=10, due_at=now - 2 * MINUTE)
        late_high = one(conn, tenant, now, status="planned", priority=90, due_at=now - MINUTE)
        due_mid = one(conn, tenant, now, priority=50)
    with engine.begin() as conn:
        claimed = queue.claim_due(conn, now=now, worker_id="a", lease_until=now + LEASE, limit=2)
    assert [m.id for m in claimed] == [late_high, due_mid]
    assert factories.statuses(engine, [early_low]) == {"planned": 1}


def test_the_next_wake_up_is_the_earliest_retry_planned_message_or_lease_expiry(
    engine: Engine,
) -> None:
    now = ManualClock()()
    with engine.begin() as conn:
        tenant = factories.insert_tenant(conn, now=now)
        one(conn, tenant, now, status="planned", due_at=now + timedelta(hours=24))
        one(conn, tenant, now, status="sent", due_at=now - timedelta(hours=1))
        assert queue.next_wakeup(conn) == now + timedelta(hours=24)
        one(conn, tenant, now, due_at=now + timedelta(minutes=10))  # a retry
        assert queue.next_wakeup(conn) == now + timedelta(minutes=10)
        one(conn, tenant, now, status="sending", lease_until=now + timedelta(minutes=1))
        assert queue.next_wakeup(conn) == now + timedelta(minutes=1)
        assert queue.next_wakeup(conn, channel="sms") is None


def test_a_claim_reads_only_the_indexes_of_the_waiting_messages(engine: Engine) -> None:
    """With thousands of reminders planned for later and of messages sent, each part of the
    claim searches its own status's index; none scans the messages table."""
    now = ManualClock()()
    with engine.begin() as conn:
        tenant = factories.insert_tenant(conn, now=now)
        one(conn, tenant, now)
        one(conn, tenant, now, status="planned", due_at=now + timedelta(days=1))
        one(conn, tenant, now, status="sent")
        copy_messages(conn, "planned", 3000)
        copy_messages(conn, "sent", 3000)
        conn.execute(text("ANALYZE"))
    with engine.begin() as conn:
        plan = claim_plan(conn, now)
    assert "ix_messages_due" in plan and "ix_messages_planned" in plan
    assert "ix_messages_claim" not in plan
    if engine.dialect.name == "sqlite":
        assert "SCAN messages" not in plan  # SEARCH only, in an index
    else:  # each part comes in its order straight from its index: no sort of its own
        # the parts peeked at (in ``top``, which sorts their few rows together), then locked
        ctes = {chunk.split("]")[0]: chunk for chunk in plan.split("[")[1:]}
        parts = [ctes[f"part{k}"] for k in range(3)]
        assert "ix_messages_leased" in ctes["top"] and "ix_messages_leased" in parts[2]
        assert "Seq Scan" not in ctes["top"]
        assert not [part for part in parts if "Seq Scan" in part or "Sort" in part]


@pytest.mark.postgres_only
def test_two_workers_claiming_at_once_take_full_batches_and_lock_nothing_more(
    engine: Engine,
) -> None:
    """Worker A's claim, its transaction still open, holds only the two rows it took (the
    most urgent); worker B, claiming meanwhile, skips them and takes two others; the two
    rows neither took stay free for a third."""
    now = ManualClock()()
    with engine.begin() as conn:
        tenant = factories.insert_tenant(conn, now=now)
        ids = [one(conn, tenant, now, priority=p) for p in (90, 80, 50, 40)]
        ids += [one(conn, tenant, now, status="planned", priority=p) for p in (70, 60)]
    with engine.connect() as a, engine.connect() as b, engine.connect() as c:
        a.begin(), b.begin(), c.begin()  # each claim's transaction stays open
        taken_a = queue.claim_due(a, now=now, worker_id="a", lease_until=now + LEASE, limit=2)
        taken_b = queue.claim_due(b, now=now, worker_id="b", lease_until=now + LEASE, limit=2)
        free = set(c.execute(text("SELECT id FROM messages FOR UPDATE SKIP LOCKED")).scalars())
    assert [m.id for m in taken_a] == ids[:2]
    assert len(taken_b) == 2 and not {m.id for m in taken_b} & set(ids[:2])
    assert free == set(ids) - {m.id for m in (*taken_a, *taken_b)}


def copy_messages(conn: Connection, status: str, count: int) -> None:
    """``count`` copies of the first message of ``status``, each with its own send key."""
    columns = (
        "tenant_id, kind, channel, address, status, priority, due_at, attempts, message_id_header,"
        " locale, from_addr, from_name, reply_to, to_name, subject_line, created_at, updated_at"
    )
    numbers = (
        "generate_series(1, :count) AS g(n)"
        if conn.dialect.name == "postgresql"
        else "(WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :count)"
        " SELECT n FROM g) AS g"
    )
    conn.execute(
        text(
            f"INSERT INTO messages ({columns}, send_key) SELECT {columns}, send_key || '-' || n"
            f" FROM (SELECT * FROM messages WHERE status = :status LIMIT 1) AS m, {numbers}"
        ),
        {"status": status, "count": count},
    )


def claim_plan(conn: Connection, now: Any) -> str:
    """The database's plan of a claim of 100, as text."""
    if conn.dialect.name == "sqlite":
        at = queue._bind_converter(conn.dialect, queue.m.c.due_at)(now)
        rows = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + queue.SQLITE_PICK, (*queue._parts("email", at, 100), 100)
        ).fetchall()
        return "\n".join(str(row[-1]) for row in rows)
    params = queue._postgres_params("email", now, 100, "w", now + LEASE)
    [[plan]] = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + queue.POSTGRES_CLAIM, params)
    parts = [p for p in plan[0]["Plan"]["Plans"] if p.get("Subplan Name", "").startswith("CTE")]
    return "\n".join(describe(node) for part in parts for node in walk(part))


def walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [node]
    for child in node.get("Plans", []):
        found += walk(child)
    return found


def describe(node: dict[str, Any]) -> str:
    """One plan node as a line: its CTE's [name] when it is one, its type, relation and index."""
    name = node.get("Subplan Name", "")
    parts = [f"[{name.removeprefix('CTE ')}]" if name.startswith("CTE ") else ""]
    parts += [node["Node Type"], f"on {node.get('Relation Name', '')}", node.get("Index Name", "")]
    return " ".join(p for p in parts if p)


def test_a_lease_held_now_by_a_worker_of_another_process_is_seen(engine: Engine) -> None:
    now = ManualClock()()
    mine = queue.process_prefix()
    with engine.begin() as conn:
        tenant = factories.insert_tenant(conn, now=now)
        one(
            conn,
            tenant,
            now,
            status="sending",
            lease_owner=f"{mine}aaaaaa",
            lease_until=now + MINUTE,
        )
        one(conn, tenant, now, status="sending", lease_owner="gone:1:bbbbbb", lease_until=now)
        one(conn, tenant, now, status="sent", lease_owner="elsewhere:2:cccccc")
    with engine.connect() as conn:
        assert not queue.sending_elsewhere(conn, mine, now), "its own, an expired one, a sent one"
    with engine.begin() as conn:
        one(
            conn,
            tenant,
            now,
            status="sending",
            lease_owner="elsewhere:2:cccccc",
            lease_until=now + MINUTE,
        )
    with engine.connect() as conn:
        assert queue.sending_elsewhere(conn, mine, now)
