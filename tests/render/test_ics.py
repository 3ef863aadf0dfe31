"""booking_invitation: read back by the independent ``icalendar`` parser, right across DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courrier.errors import ValidationError
from courrier.render.ics import booking_invitation
from courrier.render.vtimezone import periods

ZONES = ["Europe/Paris", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe"]
STAMP = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def invitation(**changes: Any) -> str:
    fields: dict[str, Any] = {
        "uid": "booking-B-1001@courrier.test",
        "sequence": 0,
        "method": "REQUEST",
        "start": datetime(2026, 6, 10, 9, 0, tzinfo=ZoneInfo("Europe/Paris")),
        "end": datetime(2026, 6, 10, 11, 0, tzinfo=ZoneInfo("Europe/Paris")),
        "timezone": "Europe/Paris",
        "summary": "Cessna 172 F-GABC",
        "location": "Hangar 2",
        "description": "Local flight",
        "organizer_email": "club@example.org",
        "organizer_name": "Aéroclub de l'Ouest",
        "attendees": [("bob@example.com", "Bob Smith")],
        "dtstamp": STAMP,
    }
    fields.update(changes)
    return booking_invitation(**fields)


def parse(text: str) -> icalendar.Calendar:
    """Parse strictly: CRLF only, lines of at most 75 octets, one VEVENT and one VTIMEZONE."""
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    calendar = icalendar.Calendar.from_ical(text)
    assert len(calendar.walk("VEVENT")) == 1
    assert len(calendar.walk("VTIMEZONE")) == 1
    return calendar


def resolve(calendar: icalendar.Calendar, name: str) -> datetime:
    """The instant of DTSTART/DTEND, its wall time read with the calendar's own VTIMEZONE."""
    event = calendar.walk("VEVENT")[0]
    value = event[name]
    if "TZID" not in value.params:
        assert value.dt.utcoffset() == timedelta(0)
        return value.dt  # type: ignore[no-any-return]
    own_zone = calendar.walk("VTIMEZONE")[0].to_tz(lookup_tzid=False)
    return value.dt.replace(tzinfo=None).replace(tzinfo=own_zone)  # type: ignore[no-any-return]


def test_request_carries_method_uid_sequence_people_and_status() -> None:
    calendar = parse(invitation(sequence=3))
    event = calendar.walk("VEVENT")[0]
    assert calendar["METHOD"] == "REQUEST"
    assert calendar["VERSION"] == "2.0"
    assert "PRODID" in calendar
    assert event["UID"] == "booking-B-1001@courrier.test"
    assert event["SEQUENCE"] == 3
    assert event["DTSTAMP"].dt == STAMP
    assert event["SUMMARY"] == "Cessna 172 F-GABC"
    assert event["LOCATION"] == "Hangar 2"
    assert event["DESCRIPTION"] == "Local flight"
    assert event["STATUS"] == "CONFIRMED"
    assert event["ORGANIZER"] == "mailto:club@example.org"
    assert event["ORGANIZER"].params["CN"] == "Aéroclub de l'Ouest"
    attendee = event["ATTENDEE"]
    assert attendee == "mailto:bob@example.com"
    assert attendee.params["CN"] == "Bob Smith"
    assert attendee.params["ROLE"] == "REQ-PARTICIPANT"
    assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"
    assert attendee.params["RSVP"] == "TRUE"
    assert event["DTSTART"].params["TZID"] == "Europe/Paris"
    assert event["DTSTART"].dt == datetime(2026, 6, 10, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))


def test_cancel_keeps_the_uid_and_says_cancelled() -> None:
    calendar = parse(invitation(method="CANCEL", sequence=2, status="confirmed"))
    event = calendar.walk("VEVENT")[0]
    assert calendar["METHOD"] == "CANCEL"
    assert event["STATUS"] == "CANCELLED"
    assert event["SEQUENCE"] == 2
    assert event["UID"] == "booking-B-1001@courrier.test"


def test_tentative_status_is_kept_and_several_attendees_listed() -> None:
    people = [("a@example.com", None), ("b@example.com", 'Béa; "B", Martin\nJr')]
    event = parse(invitation(status="tentative", attendees=people)).walk("VEVENT")[0]
    assert event["STATUS"] == "TENTATIVE"
    assert [str(a) for a in event["ATTENDEE"]] == ["mailto:a@example.com", "mailto:b@example.com"]
    assert "CN" not in event["ATTENDEE"][0].params
    assert event["ATTENDEE"][1].params["CN"] == "Béa; 'B', Martin Jr"


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_value_reads_back_exactly(text: str) -> None:
    event = parse(invitation(summary=text, description=text or None, location=text or None))
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    expected = "".join(
        " " if (ord(c) < 32 and c not in "\t\n") or c == "\x7f" else c for c in expected
    )
    event = event.walk("VEVENT")[0]
    assert event["SUMMARY"] == expected
    if text:
        assert event["DESCRIPTION"] == expected
        assert event["LOCATION"] == expected


@settings(max_examples=150, deadline=None)
@given(
    # no backslash: RFC 5545 gives it no meaning in a parameter, but icalendar unescapes "\\:"
    name=st.text(
        st.characters(exclude_characters="\\", exclude_categories=["Cs"]), max_size=80
    ).filter(str.strip),
    uid=st.text(min_size=1, max_size=120),
)
def test_any_name_and_uid_read_back(name: str, uid: str) -> None:
    event = parse(invitation(organizer_name=name, uid=uid)).walk("VEVENT")[0]
    expected = " ".join(name.split())
    expected = "".join(" " if ord(c) < 32 or c == "\x7f" else c for c in expected)
    assert event["ORGANIZER"].params["CN"] == expected.replace('"', "'")
    assert event["UID"] == uid.replace("\r\n", "\n").replace("\r", "\n").translate(
        {c: " " for c in [*range(9), *range(11, 32), 127]}
    )


def test_lone_surrogates_become_replacement_characters() -> None:
    text = invitation(summary="caf\ud83d", organizer_name="Zo\udca9")
    text.encode("utf-8")  # the caller can always encode the result
    event = parse(text).walk("VEVENT")[0]
    assert event["SUMMARY"] == "caf\ufffd"
    assert event["ORGANIZER"].params["CN"] == "Zo\ufffd"


def instants(zone: str) -> st.SearchStrategy[datetime]:
    """Instants in 2025-2027, with a third of them within a day of one of the zone's DST changes."""
    changes = [p.onset for p in periods(zone, 2025, 2027)[1:]]
    near = st.builds(
        lambda onset, seconds: onset + timedelta(seconds=seconds),
        st.sampled_from(changes),
        st.integers(-86_400, 86_400).map(lambda s: s - s % 60),
    )
    anywhere = st.datetimes(datetime(2025, 1, 2), datetime(2027, 12, 30)).map(
        lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC)
    )
    return st.one_of(near, near, anywhere)


@pytest.mark.parametrize("zone", ZONES)
@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_start_and_end_are_the_given_instants_across_dst(zone: str, data: st.DataObject) -> None:
    start = data.draw(instants(zone))
    length = timedelta(minutes=data.draw(st.integers(0, 36 * 60)))
    tz = ZoneInfo(zone)
    calendar = parse(
        invitation(start=start.astimezone(tz), end=(start + length).astimezone(tz), timezone=zone)
    )
    event = calendar.walk("VEVENT")[0]
    # timestamps, not ==: PEP 495 makes == false for an ambiguous wall time across zones
    assert event["DTSTART"].dt.timestamp() == start.timestamp()
    assert event["DTEND"].dt.timestamp() == (start + length).timestamp()
    assert resolve(calendar, "DTSTART").timestamp() == start.timestamp()
    assert resolve(calendar, "DTEND").timestamp() == (start + length).timestamp()


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("year", [2026, 2027])
def test_vtimezone_parts_match_zoneinfo(zone: str, year: int) -> None:
    """Each part's onset and offsets agree with zoneinfo; only one value per date, no rules."""
    start = datetime(year, 7, 1, 12, 0, tzinfo=UTC)
    text = invitation(start=start, end=start + timedelta(hours=1), timezone=zone)
    assert "RRULE" not in text
    assert "RDATE" not in text
    vtimezone = parse(text).walk("VTIMEZONE")[0]
    parts = vtimezone.walk("STANDARD") + vtimezone.walk("DAYLIGHT")
    tz = ZoneInfo(zone)
    for part in parts:
        before, after = part["TZOFFSETFROM"].td, part["TZOFFSETTO"].td
        onset = part["DTSTART"].dt.replace(tzinfo=UTC) - before
        assert onset.astimezone(tz).utcoffset() == after
        assert (onset - timedelta(seconds=1)).astimezone(tz).utcoffset() in (before, after)
        assert part.name == ("DAYLIGHT" if onset.astimezone(tz).dst() else "STANDARD")
    changes = sorted(p["DTSTART"].dt.replace(tzinfo=UTC) - p["TZOFFSETFROM"].td for p in parts)
    assert changes[0] <= start
    real = [p.onset for p in periods(zone, year, year)[1:]]
    assert changes[1:] == real
    assert len(real) == 2  # each of these zones changes twice a year


def test_lord_howe_shifts_by_thirty_minutes() -> None:
    tz = ZoneInfo("Australia/Lord_Howe")
    start = datetime(
        2026, 4, 5, 1, 45, tzinfo=tz
    )  # clocks go back from 02:00 (+11) to 01:30 (+10:30)
    text = invitation(start=start, end=start + timedelta(hours=1), timezone="Australia/Lord_Howe")
    assert "TZOFFSETFROM:+1100" in text
    assert "TZOFFSETTO:+1030" in text
    calendar = parse(text)
    assert resolve(calendar, "DTSTART").timestamp() == start.timestamp()
    assert resolve(calendar, "DTEND").timestamp() == (start + timedelta(hours=1)).timestamp()


def test_second_pass_of_a_repeated_hour_is_written_in_utc() -> None:
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, before clocks go back
    second = first + timedelta(hours=1)  # 02:30 CET, the same wall time again
    text = invitation(start=first, end=second, timezone="Europe/Paris")
    assert "DTSTART;TZID=Europe/Paris:20261025T023000" in text
    assert "DTEND:20261025T013000Z" in text
    calendar = parse(text)
    assert resolve(calendar, "DTSTART").timestamp() == first.timestamp()
    assert resolve(calendar, "DTEND").timestamp() == second.timestamp()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"start": datetime(2026, 6, 10, 9, 0)}, "start"),
        ({"end": datetime(2026, 6, 10, 6, 59, tzinfo=UTC)}, "end"),
        ({"organizer_email": "club at example.org"}, "organizer"),
        ({"attendees": [("bob@example.com\r\nX", None)]}, "attendees"),
        ({"sequence": -1}, "sequence"),
        ({"end": datetime(9999, 12, 31, tzinfo=UTC)}, "end"),
        ({"status": "maybe"}, "status"),
    ],
)
def test_bad_input_is_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        invitation(**changes)
    assert caught.value.field == field


ALL_ZONES = sorted(available_timezones() - {"Factory", "localtime"})


@settings(max_examples=150, deadline=None)
@given(
    zone=st.sampled_from(ALL_ZONES),
    start=st.datetimes(datetime(2024, 1, 2), datetime(2030, 12, 30)).map(
        lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC)
    ),
    minutes=st.integers(0, 60 * 24 * 40),
)
def test_every_zone_resolves_to_the_given_instants(
    zone: str, start: datetime, minutes: int
) -> None:
    """Odd zones too: negative DST (Dublin), 2-hour DST (Troll), Ramadan shifts (Casablanca)."""
    end = start + timedelta(minutes=minutes)
    calendar = parse(invitation(start=start, end=end, timezone=zone))
    assert resolve(calendar, "DTSTART").timestamp() == start.timestamp()
    assert resolve(calendar, "DTEND").timestamp() == end.timestamp()
