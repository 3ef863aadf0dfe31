"""At send time each subject-bound message is checked once more against the subject as it stands."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from courrier.engine.intake import EventInput, Intake
from courrier.settings import Settings
from courrier.store import schema, timeline
from courrier.store.contacts import ContactData, upsert_contact
from courrier.store.tenants import Tenant, create_tenant
from tests.support.dispatching import dispatcher_for
from tests.support.smtp import SmtpServer

START = datetime(2026, 3, 28, 9, 0, tzinfo=UTC)


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
    return tenant


@pytest.fixture
def dispatcher(engine: Engine, settings: Settings, clock: ManualClock) -> Iterator[Dispatcher]:
    with dispatcher_for(engine, settings, clock, "w") as worker:
        yield worker


def booking(kind: str, key: str, clock: ManualClock, **changes: Any) -> EventInput:
    subject = {
        "type": "booking",
        "id": "B-1",
        "start": START.isoformat(),
        "end": (START + timedelta(hours=1)).isoformat(),
        "booker": "m-1",
        "status": "confirmed",
        "paid": False,
        **changes,
    }
    return EventInput(type=kind, idempotency_key=key, occurred_at=clock(), subject=subject)


def message(engine: Engine, kind: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(schema.messages).where(schema.messages.c.kind == kind)).one()
        return dict(row._mapping)


def send_all(dispatcher: Dispatcher) -> None:
    while dispatcher.run_once():
        pass


def test_a_payment_reminder_for_a_booking_paid_meanwhile_is_cancelled_not_sent(
    engine: Engine,
    tenant: Tenant,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
) -> None:
    intake = Intake(engine, clock=clock)
    intake.accept(tenant, booking("booking.created", "c", clock))
    send_all(dispatcher)  # the confirmation
    # The platform says "modified" (not "paid"): intake leaves the reminder be; the check does not.
    intake.accept(tenant, booking("booking.modified", "m", clock, paid=True))
    clock.advance(timedelta(minutes=10))
    send_all(dispatcher)
    reminder = message(engine, "booking.payment_reminder")
    assert reminder["status"] == "cancelled"
    assert reminder["status_reason"] == "at send time: condition no longer holds: paid eq False"
    assert reminder["attempts"] == 0
    sent = [r.message["Message-ID"] for r in smtp_server.received]
    assert message(engine, "booking.modified")["message_id_header"] in sent
    assert reminder["message_id_header"] not in sent
    with engine.connect() as conn:
        entries = [e["entry"] for e in timeline.timeline_of(conn, reminder["id"])]
    assert entries == ["planned", "claimed", "checked"]


def test_a_reminder_whose_booking_moved_after_it_was_claimable_is_cancelled(
    engine: Engine, tenant: Tenant, clock: ManualClock, dispatcher: Dispatcher
) -> None:
    Intake(engine, clock=clock).accept(tenant, booking("booking.created", "c", clock))
    # Another writer moved the booking without an event reaching intake yet.
    moved = {**message(engine, "booking.reminder_1h"), "start": "2026-03-29T09:00:00+00:00"}
    with engine.begin() as conn:
        state = conn.execute(select(schema.subjects.c.state)).scalar_one()
        conn.execute(update(schema.subjects).values(state={**state, "start": moved["start"]}))
    clock.set(START - timedelta(hours=1))
    send_all(dispatcher)
    reminder = message(engine, "booking.reminder_1h")
    assert reminder["status"] == "cancelled"
    assert reminder["status_reason"] == "at send time: start is now 2026-03-29T09:00:00+00:00"


def test_a_reminder_that_still_fits_leaves_at_its_time(
    engine: Engine,
    tenant: Tenant,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
) -> None:
    Intake(engine, clock=clock).accept(tenant, booking("booking.created", "c", clock, paid=True))
    send_all(dispatcher)
    clock.set(START - timedelta(minutes=30))
    send_all(dispatcher)
    assert message(engine, "booking.reminder_1h")["status"] == "sent"
    assert message(engine, "booking.reminder_30min")["status"] == "sent"
    assert message(engine, "booking.checkin_notice")["status"] in ("planned", "due")


def test_a_reminder_cancelled_by_a_move_and_planned_again_by_a_move_back_leaves(
    engine: Engine, tenant: Tenant, clock: ManualClock, dispatcher: Dispatcher
) -> None:
    intake = Intake(engine, clock=clock)
    intake.accept(tenant, booking("booking.created", "c", clock, paid=True))
    soon = START.replace(month=3, day=2)  # tomorrow: too soon for the 24 h reminder
    intake.accept(
        tenant,
        booking(
            "booking.modified",
            "m1",
            clock,
            paid=True,
            start=soon.isoformat(),
            end=(soon + timedelta(hours=1)).isoformat(),
        ),
    )
    intake.accept(tenant, booking("booking.modified", "m2", clock, paid=True))  # back
    with engine.connect() as conn:
        query = select(schema.messages).where(schema.messages.c.kind == "booking.reminder_24h")
        reminders = [dict(r._mapping) for r in conn.execute(query.order_by(schema.messages.c.id))]
    assert [r["status"] for r in reminders] == ["cancelled", "planned"]
    assert reminders[1]["due_at"] == START - timedelta(days=1)
    send_all(dispatcher)
    clock.set(START - timedelta(days=1))
    send_all(dispatcher)
    with engine.connect() as conn:
        status = conn.execute(
            select(schema.messages.c.status).where(schema.messages.c.id == reminders[1]["id"])
        ).scalar_one()
    assert status == "sent"


def test_a_reminder_held_up_past_the_start_is_withdrawn_but_a_notice_at_the_start_goes(
    engine: Engine,
    tenant: Tenant,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
) -> None:
    """After an outage the queue holds reminders whose booking already began: they say why."""
    Intake(engine, clock=clock).accept(tenant, booking("booking.created", "c", clock, paid=True))
    send_all(dispatcher)  # the confirmation
    clock.set(START + timedelta(minutes=5))  # no worker ran from a day before until now
    send_all(dispatcher)
    for kind in ("booking.reminder_24h", "booking.reminder_1h", "booking.reminder_30min"):
        reminder = message(engine, kind)
        assert reminder["status"] == "cancelled", kind
        assert reminder["status_reason"] == (
            "at send time: start 2026-03-28T09:00:00+00:00 has passed"
        )
    # The check-in notice is due at the start itself: five minutes late it still goes.
    notice = message(engine, "booking.checkin_notice")
    assert notice["status"] == "sent"
    sent = {r.message["Message-ID"] for r in smtp_server.received}
    assert notice["message_id_header"] in sent
    assert message(engine, "booking.reminder_1h")["message_id_header"] not in sent
