"""One scenario per kind of the default catalogue: the right people get it, at the right time.

Each posts events through the HTTP API and lets a dispatcher send to a real
SMTP server; recipients are read from what the server received. (What the
mails say, and their calendar files, is checked by test_templates*.py.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from tests.api.conftest import Caller
from tests.scenarios.flow import email_of, post, received_for, send_due
from tests.support.smtp import SmtpServer


def a_booking(**changes: Any) -> dict[str, Any]:
    subject = {
        "type": "booking",
        "id": "B-7",
        "start": "2026-03-10T10:00:00+01:00",
        "end": "2026-03-10T12:00:00+01:00",
        "timezone": "Europe/Paris",
        "booker": "m-1",
        "participants": ["m-2"],
        "manager": "s-4",
        "resource": {"id": "F-GKQA", "name": "F-GKQA (DR400)"},
        "status": "confirmed",
        "paid": True,
    }
    subject.update(changes)
    return subject


def test_a_new_booking_goes_to_booker_manager_and_staff_who_want_each_copy(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    planned = post(club, clock, "booking.created", a_booking())
    send_due(dispatcher)
    assert received_for(club, smtp_server, planned, "booking.confirmation") == [email_of("m-1")]
    assert received_for(club, smtp_server, planned, "booking.manager_notice") == [email_of("s-4")]
    # s-1 wants each booking; s-2 a digest, so no single copy
    assert received_for(club, smtp_server, planned, "booking.staff_copy") == [email_of("s-1")]


def test_a_modification_and_a_cancellation_go_to_booker_and_participants(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    post(club, clock, "booking.created", a_booking())
    clock.advance(timedelta(minutes=1))
    modified = post(club, clock, "booking.modified", a_booking(start="2026-03-10T11:00:00+01:00"))
    clock.advance(timedelta(minutes=1))
    cancelled = post(club, clock, "booking.cancelled", a_booking(status="cancelled"))
    send_due(dispatcher)
    both = sorted([email_of("m-1"), email_of("m-2")])
    assert received_for(club, smtp_server, modified, "booking.modified") == both
    assert received_for(club, smtp_server, cancelled, "booking.cancelled") == both


def test_validation_approval_and_rejection_reach_the_right_person(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    cases = [
        ("booking.validated", "booking.validated", "m-1"),
        ("booking.approval_requested", "booking.approval_needed", "s-4"),
        ("booking.approved", "booking.approved", "m-1"),
        ("booking.rejected", "booking.rejected", "m-1"),
    ]
    for n, (event_type, kind, who) in enumerate(cases):
        clock.advance(timedelta(minutes=1))
        planned = post(club, clock, event_type, a_booking(id=f"B-{n}", status="pending"))
        send_due(dispatcher)
        assert received_for(club, smtp_server, planned, kind) == [email_of(who)], kind


def test_an_added_participant_hears_it_and_services_go_to_the_booker(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    post(club, clock, "booking.created", a_booking())
    clock.advance(timedelta(minutes=1))
    added = post(
        club,
        clock,
        "booking.participant_added",
        a_booking(participants=["m-2", "m-3"]),
        {"participant": "m-3"},
    )
    clock.advance(timedelta(minutes=1))
    services = post(club, clock, "booking.services_added", a_booking(services=["fuel"]))
    send_due(dispatcher)
    assert received_for(club, smtp_server, added, "booking.participant_added") == [email_of("m-3")]
    # the new participant gets the reminders too
    assert {m["kind"] for m in added} >= {"booking.reminder_1h", "booking.participant_added"}
    assert received_for(club, smtp_server, services, "booking.services_added") == [email_of("m-1")]


def test_a_check_in_notice_goes_at_check_in_time(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    planned = post(
        club, clock, "booking.created", a_booking(checkin_at="2026-03-10T09:45:00+01:00")
    )
    [notice] = [
        m for m in planned if m["kind"] == "booking.checkin_notice" and m["contact"] == "m-1"
    ]
    assert notice["due_at"] == "2026-03-10T08:45:00Z"
    clock.set(datetime(2026, 3, 10, 8, 44, 59, tzinfo=UTC))
    send_due(dispatcher)
    assert received_for(club, smtp_server, planned, "booking.checkin_notice") == []
    clock.set(datetime(2026, 3, 10, 8, 45, tzinfo=UTC))
    send_due(dispatcher)
    assert received_for(club, smtp_server, planned, "booking.checkin_notice") == sorted(
        [email_of("m-1"), email_of("m-2")]
    )
