"""Timing across DST changes: calendar days keep the wall clock, hours are elapsed time.

Property tests over the DST changes of Europe/Paris, America/New_York,
Australia/Sydney (southern hemisphere) and Australia/Lord_Howe (a
30-minute shift).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from courrier.domain.planning import EventFacts, due_time
from courrier.domain.timing import Timing, before, next_daily, resolve_local

ZONES = ["Europe/Paris", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe"]
zones = st.sampled_from(ZONES).map(ZoneInfo)
# Instants around every DST change of 2025-2028 are in this range.
instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
times_of_day = st.times().map(lambda t: t.replace(microsecond=0))


def exists(naive: datetime, zone: ZoneInfo) -> bool:
    """True when the wall-clock reading happens in the zone (is not in a spring gap)."""
    return resolve_local(naive, zone).astimezone(zone).replace(tzinfo=None) == naive


@given(instants, zones, st.integers(1, 3))
def test_days_before_keep_the_wall_clock_time(start: datetime, zone: ZoneInfo, days: int) -> None:
    due = before(start, zone, days=days)
    local_start, local_due = start.astimezone(zone), due.astimezone(zone)
    assert local_due.date() == local_start.date() - timedelta(days=days)
    wanted = local_start.replace(tzinfo=None) - timedelta(days=days)
    if exists(wanted, zone):
        assert local_due.time() == local_start.time()
    else:  # a spring gap: moved forward by the gap, never earlier
        assert local_due.replace(tzinfo=None) > wanted
        assert local_due.replace(tzinfo=None) - wanted <= timedelta(hours=1)


@given(instants, zones, st.integers(1, 180))
def test_minutes_before_are_elapsed_time(start: datetime, zone: ZoneInfo, minutes: int) -> None:
    assert start - before(start, zone, offset=timedelta(minutes=minutes)) == timedelta(
        minutes=minutes
    )


@given(instants, zones, times_of_day)
def test_the_day_before_at_a_time_is_that_time_on_the_previous_local_day(
    start: datetime, zone: ZoneInfo, at: time
) -> None:
    due = before(start, zone, days=1, at=at).astimezone(zone)
    assert due.date() == start.astimezone(zone).date() - timedelta(days=1)
    if exists(datetime.combine(due.date(), at), zone):
        assert due.time() == at


@given(instants, zones, times_of_day)
def test_a_daily_time_is_the_next_one_on_the_local_clock(
    after: datetime, zone: ZoneInfo, at: time
) -> None:
    due = next_daily(after, at, zone)
    assert after <= due < after + timedelta(hours=49)
    if exists(datetime.combine(due.astimezone(zone).date(), at), zone):
        assert due.astimezone(zone).time() == at


@given(instants, zones)
def test_a_day_before_reminder_is_never_after_its_date(start: datetime, zone: ZoneInfo) -> None:
    created = start - timedelta(days=10)
    facts = EventFacts("booking.created", created, "booking", "B-1")
    state = {"start": start.isoformat(), "timezone": zone.key}
    timed = due_time(Timing.before("start", days=1), facts, state, created)
    assert timed is not None
    due, occurrence = timed
    assert start - timedelta(hours=26) <= due <= start - timedelta(hours=22)
    assert occurrence == start.isoformat()


def test_paris_spring_forward_the_day_before_is_23_hours() -> None:
    paris = ZoneInfo("Europe/Paris")
    start = datetime(2026, 3, 29, 10, 0, tzinfo=paris)  # clocks went forward at 02:00
    due = before(start, paris, days=1)
    assert due.astimezone(paris).replace(tzinfo=None) == datetime(2026, 3, 28, 10, 0)
    assert start - due == timedelta(hours=23)


def test_new_york_fall_back_the_day_before_is_25_hours() -> None:
    new_york = ZoneInfo("America/New_York")
    start = datetime(2026, 11, 1, 9, 0, tzinfo=new_york)  # clocks went back at 02:00
    due = before(start, new_york, days=1)
    assert due.astimezone(new_york).hour == 9
    assert start - due == timedelta(hours=25)


def test_lord_howe_shifts_by_half_an_hour() -> None:
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    start = datetime(2026, 10, 4, 9, 0, tzinfo=lord_howe)  # clocks went forward 30 min at 02:00
    due = before(start, lord_howe, days=1)
    assert due.astimezone(lord_howe).hour == 9
    assert start - due == timedelta(hours=23, minutes=30)


def test_a_wall_time_in_the_spring_gap_moves_forward_by_the_gap() -> None:
    paris = ZoneInfo("Europe/Paris")
    due = resolve_local(datetime(2026, 3, 29, 2, 30), paris)
    assert due.astimezone(paris).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 30)


def test_a_wall_time_repeated_in_autumn_is_its_first_occurrence() -> None:
    paris = ZoneInfo("Europe/Paris")
    due = resolve_local(datetime(2026, 10, 25, 2, 30), paris)
    assert due == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, not CET
