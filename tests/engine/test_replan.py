"""Re-planning inside intake: reminders move with the booking, stale ones are cancelled with why."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.engine.intake import EventInput, Intake
from courrier.store import schema, timeline
from courrier.store.contacts import ContactData, upsert_contact
from courrier.store.tenants import Tenant, create_tenant
from tests.support import factories

REMINDERS = {
    "booking.reminder_24h",
    "booking.reminder_1h",
    "booking.reminder_30min",
    "booking.checkin_notice",
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def tenant(engine: Engine, clock: ManualClock) -> Tenant:
    with engine.begin() as conn:
        tenant = create_tenant(
            conn, "Club", from_email="bookings@club.test", timezone="Europe/Paris", now=clock()
        )
        upsert_contact(conn, tenant.id, "m-1", ContactData(email="ada@example.com"), now=clock())
        upsert_contact(conn, tenant.id, "m-2", ContactData(email="bob@example.com"), now=clock())
    return tenant


@pytest.fixture
def intake(engine: Engine, clock: ManualClock) -> Intake:
    return Intake(engine, clock=clock)


def event(kind: str, key: str, clock: ManualClock, **subject: Any) -> EventInput:
    state = {
        "type": "booking",
        "id": "B-1",
        "start": "2026-03-28T10:00:00+01:00",
        "end": "2026-03-28T12:00:00+01:00",
        "timezone": "Europe/Paris",
        "booker": "m-1",
        "status": "confirmed",
        "paid": False,
        **subject,
    }
    return EventInput(type=kind, idempotency_key=key, occurred_at=clock(), subject=state)


def rows(engine: Engine) -> list[dict[str, Any]]:
    return factories.all_messages(engine)


def pending(engine: Engine) -> dict[tuple[str, str], datetime]:
    """(kind, address) -> due time of every message still to send."""
    return {
        (r["kind"], r["address"]): r["due_at"]
        for r in rows(engine)
        if r["status"] in ("planned", "due")
    }


def test_a_moved_booking_moves_its_reminders_to_the_new_time(
    engine: Engine, intake: Intake, tenant: Tenant, clock: ManualClock
) -> None:
    intake.accept(tenant, event("booking.created", "c", clock))
    before = {r["kind"]: r["id"] for r in rows(engine) if r["kind"] in REMINDERS}
    clock.advance(timedelta(hours=1))
    intake.accept(
        tenant,
        event(
            "booking.modified",
            "m",
            clock,
            start="2026-04-02T10:00:00+02:00",
            end="2026-04-02T11:00:00+02:00",
        ),
    )
    now = pending(engine)
    # Same rows, new times: 10:00 Paris summer time is 08:00 UTC.
    assert now[("booking.reminder_24h", "ada@example.com")] == datetime(
        2026, 4, 1, 8, 0, tzinfo=UTC
    )
    assert now[("booking.reminder_1h", "ada@example.com")] == datetime(2026, 4, 2, 7, 0, tzinfo=UTC)
    assert now[("booking.checkin_notice", "ada@example.com")] == datetime(2026, 4, 2, 8, tzinfo=UTC)
    after = {r["kind"]: r["id"] for r in rows(engine) if r["kind"] in REMINDERS}
    assert after == before
    with engine.connect() as conn:
        entries = [e["entry"] for e in timeline.timeline_of(conn, before["booking.reminder_1h"])]
    assert entries == ["planned", "replanned"]
    moved = next(r for r in rows(engine) if r["id"] == before["booking.reminder_1h"])
    assert "2" in moved["body_text"]  # rendered again from the new state


def test_a_new_participant_gets_reminders_and_a_removed_one_loses_them(
    engine: Engine, intake: Intake, tenant: Tenant, clock: ManualClock
) -> None:
    intake.accept(tenant, event("booking.created", "c", clock, participants=["m-2"]))
    assert ("booking.reminder_1h", "bob@example.com") in pending(engine)
    intake.accept(tenant, event("booking.modified", "m", clock, participants=[]))
    assert ("booking.reminder_1h", "bob@example.com") not in pending(engine)
    [dropped] = [
        r
        for r in rows(engine)
        if r["kind"] == "booking.reminder_1h" and r["address"] == "bob@example.com"
    ]
    assert dropped["status"] == "cancelled"
    assert "no longer one of its recipients" in dropped["status_reason"]


def test_a_booking_moved_closer_than_48_hours_after_booking_loses_its_24h_reminder(
    engine: Engine, intake: Intake, tenant: Tenant, clock: ManualClock
) -> None:
    intake.accept(tenant, event("booking.created", "c", clock))
    intake.accept(
        tenant,
        event(
            "booking.modified",
            "m",
            clock,
            start="2026-03-02T18:00:00+01:00",
            end="2026-03-02T19:00:00+01:00",
        ),
    )
    assert ("booking.reminder_24h", "ada@example.com") not in pending(engine)
    [dropped] = [r for r in rows(engine) if r["kind"] == "booking.reminder_24h"]
    assert dropped["status"] == "cancelled" and "too soon" in dropped["status_reason"]
    assert ("booking.reminder_1h", "ada@example.com") in pending(engine)


def test_a_cancelled_booking_cancels_every_pending_message_saying_why(
    engine: Engine, intake: Intake, tenant: Tenant, clock: ManualClock
) -> None:
    intake.accept(tenant, event("booking.created", "c", clock))
    intake.accept(tenant, event("booking.cancelled", "x", clock, status="cancelled"))
    left = {kind for kind, _ in pending(engine)}
    assert left == {"booking.confirmation", "booking.cancelled"}
    for row in rows(engine):
        if row["kind"] in REMINDERS | {"booking.payment_reminder"}:
            assert row["status"] == "cancelled"
            assert row["status_reason"] == "cancelled by booking.cancelled"


def test_a_payment_drops_the_payment_reminder_only(
    engine: Engine, intake: Intake, tenant: Tenant, clock: ManualClock
) -> None:
    intake.accept(tenant, event("booking.created", "c", clock))
    assert ("booking.payment_reminder", "ada@example.com") in pending(engine)
    intake.accept(tenant, event("booking.paid", "p", clock, paid=True))
    left = {kind for kind, _ in pending(engine)}
    assert "booking.payment_reminder" not in left
    assert left >= REMINDERS


def test_created_and_moved_in_one_batch_plans_each_reminder_once(
    engine: Engine, intake: Intake, tenant: Tenant, clock: ManualClock
) -> None:
    moved = event(
        "booking.modified",
        "m",
        clock,
        start="2026-04-02T10:00:00+02:00",
        end="2026-04-02T11:00:00+02:00",
    )
    intake.accept_many(tenant, [event("booking.created", "c", clock), moved])
    reminders = [r for r in rows(engine) if r["kind"] == "booking.reminder_1h"]
    assert [(r["status"], r["due_at"]) for r in reminders] == [
        ("planned", datetime(2026, 4, 2, 7, 0, tzinfo=UTC))
    ]


def test_a_sent_reminder_is_sent_again_for_a_new_time_but_never_twice_for_one(
    engine: Engine, intake: Intake, tenant: Tenant, clock: ManualClock
) -> None:
    intake.accept(tenant, event("booking.created", "c", clock))
    with engine.begin() as conn:  # as the dispatcher leaves it once sent
        conn.execute(
            schema.messages.update()
            .where(schema.messages.c.kind == "booking.reminder_1h")
            .values(status="sent")
        )
    later = {"start": "2026-03-29T10:00:00+02:00", "end": "2026-03-29T11:00:00+02:00"}
    intake.accept(tenant, event("booking.modified", "m1", clock, **later))
    reminders = [r for r in rows(engine) if r["kind"] == "booking.reminder_1h"]
    assert [(r["status"], r["due_at"]) for r in reminders] == [
        ("sent", datetime(2026, 3, 28, 8, 0, tzinfo=UTC)),
        ("planned", datetime(2026, 3, 29, 7, 0, tzinfo=UTC)),
    ]
    intake.accept(tenant, event("booking.modified", "m2", clock))  # back to the first time
    reminders = [r for r in rows(engine) if r["kind"] == "booking.reminder_1h"]
    assert [r["status"] for r in reminders] == ["sent", "cancelled"]
    assert reminders[1]["status_reason"] == "already sent for this time"


def test_racing_moves_leave_one_reminder_per_person_at_the_time_of_the_last_version(
    engine: Engine, intake: Intake, tenant: Tenant, clock: ManualClock
) -> None:
    """Two moves of one booking at once: each reminder once, at the time of the state kept."""
    intake.accept(tenant, event("booking.created", "c", clock, participants=["m-2"]))
    barrier = threading.Barrier(2)
    starts = ["2026-04-02T10:00:00+02:00", "2026-04-03T10:00:00+02:00"]

    def move(n: int) -> None:
        barrier.wait()
        end = starts[n].replace("T10:", "T11:")
        changes = {"start": starts[n], "end": end, "participants": ["m-2"]}
        intake.accept(tenant, event("booking.modified", f"m{n}", clock, **changes))

    threads = [threading.Thread(target=move, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with engine.connect() as conn:
        state = conn.execute(select(schema.subjects.c.state)).scalar_one()
    final = datetime.fromisoformat(state["start"])
    reminders = [
        r for r in rows(engine) if r["kind"] == "booking.reminder_1h" and r["status"] == "planned"
    ]
    assert sorted(r["address"] for r in reminders) == ["ada@example.com", "bob@example.com"]
    assert {r["due_at"] for r in reminders} == {final - timedelta(hours=1)}


def test_a_reminder_whose_time_has_passed_is_not_planned_nor_kept_after_a_move(
    engine: Engine, intake: Intake, tenant: Tenant, clock: ManualClock
) -> None:
    soon = {"start": "2026-03-01T10:45:00+01:00", "end": "2026-03-01T11:45:00+01:00"}
    intake.accept(tenant, event("booking.created", "c", clock, id="B-soon", **soon))
    kinds = {kind for kind, _ in pending(engine)}
    assert "booking.reminder_1h" not in kinds  # 45 minutes ahead: no "1 h before"
    assert "booking.reminder_30min" in kinds
    intake.accept(tenant, event("booking.created", "c2", clock, id="B-2"))
    intake.accept(tenant, event("booking.modified", "m", clock, id="B-2", **soon))
    [dropped] = [
        r for r in rows(engine) if r["kind"] == "booking.reminder_1h" and r["status"] != "planned"
    ]
    assert dropped["status"] == "cancelled"
    assert dropped["status_reason"] == (
        "booking.modified: its time (2026-03-01T08:45:00+00:00) has passed"
    )


def test_an_overdue_reminder_stays_as_it_is_when_another_event_comes(
    engine: Engine, intake: Intake, tenant: Tenant, clock: ManualClock
) -> None:
    intake.accept(tenant, event("booking.created", "c", clock))
    clock.set(datetime(2026, 3, 28, 8, 5, tzinfo=UTC))  # the 1 h reminder is 5 minutes overdue
    intake.accept(tenant, event("booking.paid", "p", clock, paid=True))
    [reminder] = [r for r in rows(engine) if r["kind"] == "booking.reminder_1h"]
    assert reminder["status"] in ("planned", "due")  # still to send, at its own time
    assert reminder["due_at"] == datetime(2026, 3, 28, 8, 0, tzinfo=UTC)
