"""Calendar files of one booking's life, read by icalendar around the autumn DST change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import icalendar
import pytest

from courrier.engine.calendar_files import calendar_file, calendar_method
from courrier.errors import TemplateError
from courrier.render.templates import RenderedMessage
from courrier.store.tenants import Tenant

TENANT = Tenant(1, "Club", "noreply@club.example", "Club", None, "Europe/Paris", "fr")
RENDERED = RenderedMessage("Réservation", "Texte", "<p>Texte</p>")
NOW = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
#: 25 October 2026: Paris goes from UTC+2 back to UTC+1 at 03:00, so 02:00-03:00 happens twice
BOOKING = {
    "type": "booking",
    "id": "B-9",
    "timezone": "Europe/Paris",
    "resource": {"name": "Court 1"},
    "status": "confirmed",
}
VERSIONS = [
    # (event, start, end): created, moved into the repeated hour, cancelled
    ("ics.request", "2026-10-24T22:00:00+00:00", "2026-10-24T23:30:00+00:00"),
    ("ics.request", "2026-10-25T01:30:00+00:00", "2026-10-25T02:30:00+00:00"),
    ("ics.cancel", "2026-10-25T01:30:00+00:00", "2026-10-25T02:30:00+00:00"),
]


def parsed(attachment: str, version: int, start: str, end: str) -> Any:
    state = {**BOOKING, "start": start, "end": end}
    method: Literal["REQUEST", "CANCEL"] = calendar_method(attachment, state)
    stored = calendar_file(
        method, state, TENANT, version, RENDERED, ("zoe@example.org", "Zoë"), NOW
    )
    return icalendar.Calendar.from_ical(stored["content"])


def test_one_uid_a_rising_sequence_and_the_right_instants_across_the_change() -> None:
    seen = []
    for version, (attachment, start, end) in enumerate(VERSIONS, start=1):
        calendar = parsed(attachment, version, start, end)
        [event] = calendar.walk("VEVENT")
        begins, ends = event.decoded("DTSTART"), event.decoded("DTEND")
        assert begins == datetime.fromisoformat(start)
        assert ends == datetime.fromisoformat(end)
        seen.append((str(calendar["METHOD"]), str(event["UID"]), int(event["SEQUENCE"])))
    assert seen == [
        ("REQUEST", "booking-B-9@club.example", 0),
        ("REQUEST", "booking-B-9@club.example", 1),
        ("CANCEL", "booking-B-9@club.example", 2),
    ]


def test_a_booking_in_the_repeated_hour_keeps_its_instants() -> None:
    _, start, end = VERSIONS[1]  # 02:30 (the second time round) to 03:30 winter time
    [event] = parsed("ics.request", 2, start, end).walk("VEVENT")
    begins, ends = event.decoded("DTSTART"), event.decoded("DTEND")
    assert ends.timestamp() - begins.timestamp() == 3600
    assert begins.astimezone(UTC).hour == 1 and ends.astimezone(UTC).hour == 2


def test_the_time_zone_block_states_both_offsets_of_the_year() -> None:
    calendar = parsed(*VERSIONS[0][:1], 1, *VERSIONS[0][1:])
    [zone] = calendar.walk("VTIMEZONE")
    offsets = {(part.name, part.decoded("TZOFFSETTO")) for part in zone.subcomponents}
    assert ("DAYLIGHT", timedelta(hours=2)) in offsets
    assert ("STANDARD", timedelta(hours=1)) in offsets


def test_a_subject_without_times_has_no_calendar_file() -> None:
    with pytest.raises(TemplateError, match="start and end"):
        calendar_file(
            "REQUEST", {"type": "booking", "id": "B-1"}, TENANT, 1, RENDERED, ("a@b.c", None), NOW
        )
