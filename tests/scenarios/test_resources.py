"""Resources through the API: maintenance start and end to those booked in the window and subscribers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from tests.api.conftest import Caller
from tests.scenarios.flow import email_of, post, received_for, send_due
from tests.support.smtp import SmtpServer


def booked(club: Caller, clock: ManualClock, booking_id: str, booker: str, start: str) -> None:
    subject = {
        "type": "booking",
        "id": booking_id,
        "start": start,
        "end": start.replace("T10:", "T12:"),
        "timezone": "Europe/Paris",
        "booker": booker,
        "resource": {"id": "F-GKQA", "name": "F-GKQA (DR400)"},
        "status": "confirmed",
        "paid": True,
    }
    post(club, clock, "booking.created", subject)
    clock.advance(timedelta(seconds=1))


def aircraft(**changes: Any) -> dict[str, Any]:
    subject = {
        "type": "resource",
        "id": "F-GKQA",
        "name": "F-GKQA (DR400)",
        "subscribers": ["s-4"],
        "maintenance": {"start": "2026-03-10T00:00:00+01:00", "end": "2026-03-12T00:00:00+01:00"},
    }
    subject.update(changes)
    return subject


def test_maintenance_start_and_end_reach_those_booked_in_the_window_and_subscribers(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    booked(club, clock, "B-in", "m-1", "2026-03-11T10:00:00+01:00")
    booked(club, clock, "B-out", "m-2", "2026-03-20T10:00:00+01:00")
    booked(club, clock, "B-gone", "m-3", "2026-03-10T10:00:00+01:00")
    cancelled = {
        "type": "booking",
        "id": "B-gone",
        "start": "2026-03-10T10:00:00+01:00",
        "end": "2026-03-10T12:00:00+01:00",
        "booker": "m-3",
        "resource": {"id": "F-GKQA", "name": "F-GKQA (DR400)"},
        "status": "cancelled",
    }
    post(club, clock, "booking.cancelled", cancelled)
    send_due(dispatcher)
    started = post(club, clock, "resource.maintenance_started", aircraft())
    clock.advance(timedelta(minutes=1))
    ended = post(club, clock, "resource.maintenance_ended", aircraft())
    send_due(dispatcher)
    people = sorted([email_of("m-1"), email_of("s-4")])
    assert received_for(club, smtp_server, started, "resource.maintenance_start") == people
    assert received_for(club, smtp_server, ended, "resource.maintenance_end") == people
