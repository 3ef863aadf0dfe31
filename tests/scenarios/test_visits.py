"""Visits through the API: notices to the visitor, the 24 h reminder rule, check-in to the hosts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from tests.api.conftest import Caller
from tests.scenarios.flow import email_of, post, received_for, send_due
from tests.support.smtp import SmtpServer


def a_visit(start: str = "2026-03-10T14:00:00+01:00", **changes: Any) -> dict[str, Any]:
    begin = datetime.fromisoformat(start)
    subject = {
        "type": "visit",
        "id": "V-1",
        "start": start,
        "end": (begin + timedelta(hours=1)).isoformat(),
        "timezone": "Europe/Paris",
        "visitor": "m-3",
        "host": "s-1",
        "cohosts": ["s-4"],
    }
    subject.update(changes)
    return subject


def test_a_visit_created_modified_and_cancelled_is_told_to_the_visitor(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    created = post(club, clock, "visit.created", a_visit())
    clock.advance(timedelta(minutes=1))
    modified = post(club, clock, "visit.modified", a_visit("2026-03-11T14:00:00+01:00"))
    clock.advance(timedelta(minutes=1))
    cancelled = post(club, clock, "visit.cancelled", a_visit(status="cancelled"))
    send_due(dispatcher)
    visitor = [email_of("m-3")]
    assert received_for(club, smtp_server, created, "visit.created") == visitor
    assert received_for(club, smtp_server, modified, "visit.modified") == visitor
    assert received_for(club, smtp_server, cancelled, "visit.cancelled") == visitor


def test_the_visit_reminder_comes_the_day_before_when_planned_48_hours_ahead(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    planned = post(club, clock, "visit.created", a_visit())
    [reminder] = [m for m in planned if m["kind"] == "visit.reminder_24h"]
    assert reminder["contact"] == "m-3"
    assert reminder["due_at"] == "2026-03-09T13:00:00Z"  # 14:00 in Paris, the day before
    clock.set(datetime(2026, 3, 9, 13, 0, tzinfo=UTC))
    send_due(dispatcher)
    assert received_for(club, smtp_server, planned, "visit.reminder_24h") == [email_of("m-3")]


def test_no_visit_reminder_when_created_less_than_48_hours_ahead(
    club: Caller, clock: ManualClock
) -> None:
    planned = post(club, clock, "visit.created", a_visit("2026-03-03T08:00:00+01:00"))
    assert [m["kind"] for m in planned] == ["visit.created"]


def test_a_moved_visit_moves_its_reminder_and_a_cancelled_one_drops_it(
    club: Caller, clock: ManualClock
) -> None:
    [reminder] = [
        m
        for m in post(club, clock, "visit.created", a_visit())
        if m["kind"] == "visit.reminder_24h"
    ]
    clock.advance(timedelta(hours=1))
    moved = post(club, clock, "visit.modified", a_visit("2026-03-12T09:30:00+01:00"))
    [again] = [m for m in moved if m["kind"] == "visit.reminder_24h"]
    assert again["id"] == reminder["id"]
    assert again["due_at"] == "2026-03-11T08:30:00Z"
    post(club, clock, "visit.cancelled", a_visit(status="cancelled"))
    detail = club.get(f"/v1/messages/{reminder['id']}").json()
    assert detail["status"] == "cancelled"
    assert detail["status_reason"] == "cancelled by visit.cancelled"


def test_a_check_in_goes_to_host_and_cohosts_by_email_at_once(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    post(club, clock, "visit.created", a_visit())
    clock.set(datetime(2026, 3, 10, 12, 58, tzinfo=UTC))
    answer = post(club, clock, "visit.checked_in", a_visit(status="arrived"))
    checked_in = [m for m in answer if m["kind"] == "visit.checkin"]
    assert {m["channel"] for m in checked_in} == {"email"}  # no push channel yet: noted
    for message in checked_in:
        [planned] = club.get(f"/v1/messages/{message['id']}").json()["timeline"][:1]
        assert planned["data"]["unavailable_channels"] == ["push"]
    assert all(m["due_at"] == "2026-03-10T12:58:00Z" for m in checked_in)
    send_due(dispatcher)
    assert received_for(club, smtp_server, checked_in, "visit.checkin") == sorted(
        [email_of("s-1"), email_of("s-4")]
    )
