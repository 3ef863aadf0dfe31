"""A booking's life through the HTTP API, with a real SMTP server and a manual clock.

At each step the pending messages are exactly those the booking's current
state calls for: reminders move with it, the 24 h one only for a booking
made 48 h ahead, a payment drops the payment reminder, a cancellation
cancels everything, and no race sends anything twice.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from courrier.channels.email import SmtpSender
from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from courrier.settings import Settings
from tests.api.conftest import Caller, booking, member
from tests.support.smtp import SmtpServer

REMINDERS = ("booking.reminder_24h", "booking.reminder_1h", "booking.reminder_30min")
PEOPLE = ("m-17", "m-18")


@pytest.fixture
def clock() -> ManualClock:
    """Sunday 1 March 2026, 10:00 in Paris."""
    return ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


def make_dispatcher(
    settings: Settings, engine: Engine, clock: ManualClock, name: str
) -> Dispatcher:
    assert settings.smtp is not None
    sender = SmtpSender(settings.smtp, pool_size=1, timeout=5.0)
    return Dispatcher(engine, settings, sender, clock=clock, worker_id=name)


@pytest.fixture
def dispatcher(settings: Settings, engine: Engine, clock: ManualClock) -> Iterator[Dispatcher]:
    worker = make_dispatcher(settings, engine, clock, "worker-1")
    yield worker
    worker.close()
    worker.sender.close()


@pytest.fixture
def people(alice: Caller) -> Caller:
    """Alpha's booker m-17 (Camille) and participant m-18 (Louis)."""
    alice.put("/v1/contacts/m-17", json=member())
    alice.put("/v1/contacts/m-18", json=member(name="Louis Bernard", email="louis@example.org"))
    return alice


def post(caller: Caller, kind: str, key: str, clock: ManualClock, **subject: Any) -> Any:
    event = booking(type=kind, idempotency_key=key, occurred_at=clock().isoformat())
    event["subject"].update({"participants": ["m-18"], "paid": True, **subject})
    response = caller.post("/v1/events", json=event)
    assert response.status_code == 202, response.text
    return response.json()


def at(start: str, **subject: Any) -> dict[str, Any]:
    """A booking from ``start`` (Paris time, ISO with offset) lasting one hour."""
    begin = datetime.fromisoformat(start)
    return {"start": start, "end": (begin + timedelta(hours=1)).isoformat(), **subject}


def messages(caller: Caller) -> list[dict[str, Any]]:
    response = caller.get(
        "/v1/messages", params={"subject_type": "booking", "subject_id": "B-1001"}
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def pending(caller: Caller) -> dict[tuple[str, str], str]:
    """(kind, contact) -> due time (UTC) of each message still to send."""
    return {
        (m["kind"], m["contact"]): m["due_at"]
        for m in messages(caller)
        if m["status"] in ("planned", "due")
    }


def reminders_at(due: dict[str, str]) -> dict[tuple[str, str], str]:
    """The same reminder times for the booker and the participant."""
    return {(kind, who): time for kind, time in due.items() for who in PEOPLE}


def send_due(dispatcher: Dispatcher) -> None:
    while dispatcher.run_once():
        pass


def test_a_booking_created_moved_twice_and_cancelled_has_exactly_the_right_reminders(
    people: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    # Created for Saturday 28 March, 10:00 in Paris (09:00 UTC): 27 days ahead.
    post(people, "booking.created", "c", clock, **at("2026-03-28T10:00:00+01:00"))
    send_due(dispatcher)  # the confirmation
    assert pending(people) == reminders_at(
        {
            "booking.reminder_24h": "2026-03-27T09:00:00Z",
            "booking.reminder_1h": "2026-03-28T08:00:00Z",
            "booking.reminder_30min": "2026-03-28T08:30:00Z",
            "booking.checkin_notice": "2026-03-28T09:00:00Z",
        }
    )
    ids = {(m["kind"], m["contact"]): m["id"] for m in messages(people) if m["status"] == "planned"}

    # Moved to Monday 30 March, 10:00, after the change to summer time (08:00 UTC):
    # the day before at 10:00 is 23 hours earlier.
    clock.advance(timedelta(hours=1))
    post(people, "booking.modified", "m1", clock, **at("2026-03-30T10:00:00+02:00"))
    send_due(dispatcher)  # the modification notices
    assert pending(people) == reminders_at(
        {
            "booking.reminder_24h": "2026-03-29T08:00:00Z",
            "booking.reminder_1h": "2026-03-30T07:00:00Z",
            "booking.reminder_30min": "2026-03-30T07:30:00Z",
            "booking.checkin_notice": "2026-03-30T08:00:00Z",
        }
    )
    moved = {
        (m["kind"], m["contact"]): m["id"] for m in messages(people) if m["status"] == "planned"
    }
    assert moved == ids  # the same messages moved, none replaced

    # Moved to tomorrow 18:00: booked less than 48 h ahead, so no 24 h reminder.
    clock.advance(timedelta(hours=1))
    post(people, "booking.modified", "m2", clock, **at("2026-03-02T18:00:00+01:00"))
    send_due(dispatcher)
    assert pending(people) == reminders_at(
        {
            "booking.reminder_1h": "2026-03-02T16:00:00Z",
            "booking.reminder_30min": "2026-03-02T16:30:00Z",
            "booking.checkin_notice": "2026-03-02T17:00:00Z",
        }
    )
    dropped = [m for m in messages(people) if m["kind"] == "booking.reminder_24h"]
    assert {m["status"] for m in dropped} == {"cancelled"}
    reason = people.get(f"/v1/messages/{dropped[0]['id']}").json()["status_reason"]
    assert reason.startswith("booking.modified: start is now 2026-03-02T18:00:00+01:00")

    # Cancelled: nothing left to send; every reminder says why.
    post(
        people,
        "booking.cancelled",
        "x",
        clock,
        status="cancelled",
        **at("2026-03-02T18:00:00+01:00"),
    )
    send_due(dispatcher)
    assert pending(people) == {}
    for message in messages(people):
        if message["kind"] in (*REMINDERS, "booking.checkin_notice") and message["id"] not in {
            m["id"] for m in dropped
        }:
            detail = people.get(f"/v1/messages/{message['id']}").json()
            assert detail["status"] == "cancelled"
            assert detail["status_reason"] == "cancelled by booking.cancelled"

    # Long after the old and new times, no reminder ever went out.
    clock.set(datetime(2026, 4, 1, tzinfo=UTC))
    send_due(dispatcher)
    sent = sorted((m["kind"], m["contact"]) for m in messages(people) if m["status"] == "sent")
    assert sent == sorted(
        [("booking.confirmation", "m-17")]
        + [
            (kind, who)
            for kind in ("booking.modified",) * 2 + ("booking.cancelled",)
            for who in PEOPLE
        ]
    )
    assert len(smtp_server.received) == len(sent)


def test_a_payment_reminder_goes_10_minutes_after_an_unpaid_booking(
    people: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    post(people, "booking.created", "c", clock, paid=False)
    assert pending(people)[("booking.payment_reminder", "m-17")] == "2026-03-01T09:10:00Z"
    clock.advance(timedelta(minutes=9, seconds=59))
    send_due(dispatcher)
    assert ("booking.payment_reminder", "m-17") in pending(people)
    clock.advance(timedelta(seconds=1))
    send_due(dispatcher)
    [reminder] = [m for m in messages(people) if m["kind"] == "booking.payment_reminder"]
    assert reminder["status"] == "sent"
    assert [r.recipients for r in smtp_server.received][-1] == ["camille@example.org"]


def test_a_payment_drops_the_payment_reminder(
    people: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    post(people, "booking.created", "c", clock, paid=False)
    clock.advance(timedelta(minutes=5))
    post(people, "booking.paid", "p", clock, paid=True)
    clock.advance(timedelta(minutes=10))
    send_due(dispatcher)
    [reminder] = [m for m in messages(people) if m["kind"] == "booking.payment_reminder"]
    detail = people.get(f"/v1/messages/{reminder['id']}").json()
    assert detail["status"] == "cancelled"
    assert detail["status_reason"] == "cancelled by booking.paid"
    assert {m["kind"] for m in messages(people) if m["status"] == "sent"} == {
        "booking.confirmation"
    }
    assert all(kind[0] in (*REMINDERS, "booking.checkin_notice") for kind in pending(people))


def test_the_24h_reminder_is_absent_when_booked_less_than_48_hours_ahead(
    people: Caller, clock: ManualClock
) -> None:
    post(people, "booking.created", "c", clock, **at("2026-03-03T08:00:00+01:00"))  # 46 h ahead
    kinds = {kind for kind, _ in pending(people)}
    assert "booking.reminder_24h" not in kinds
    assert {"booking.reminder_1h", "booking.reminder_30min", "booking.checkin_notice"} <= kinds


def test_the_24h_reminder_is_there_when_booked_48_hours_ahead(
    people: Caller, clock: ManualClock
) -> None:
    post(people, "booking.created", "c", clock, **at("2026-03-03T10:00:00+01:00"))  # 48 h ahead
    assert pending(people)[("booking.reminder_24h", "m-17")] == "2026-03-02T09:00:00Z"


def test_no_race_sends_a_reminder_twice(
    people: Caller,
    clock: ManualClock,
    settings: Settings,
    engine: Engine,
    smtp_server: SmtpServer,
) -> None:
    """The same booking posted twice at once, under two keys, then two workers at once."""
    outcomes: list[int] = []

    def post_under(key: str) -> None:
        event = booking(idempotency_key=key, occurred_at=clock().isoformat())
        event["subject"].update(participants=["m-18"], paid=True)
        outcomes.append(people.post("/v1/events", json=event).status_code)

    threads = [threading.Thread(target=post_under, args=(f"k-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [202, 202]
    # a minute before the start: every reminder is due, and none announces the past yet
    clock.set(datetime(2026, 3, 5, 8, 59, tzinfo=UTC))
    workers = [make_dispatcher(settings, engine, clock, f"w-{n}") for n in range(2)]
    try:
        runs = [threading.Thread(target=send_due, args=(w,)) for w in workers]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
    finally:
        for worker in workers:
            worker.close()
            worker.sender.close()
    ids = [r.message["Message-ID"] for r in smtp_server.received]
    assert len(ids) == len(set(ids))
    sent = [(m["kind"], m["contact"]) for m in messages(people) if m["status"] == "sent"]
    assert len(sent) == len(set(sent)) == len(ids)
    assert {kind for kind, _ in sent} >= {"booking.confirmation", *REMINDERS}
