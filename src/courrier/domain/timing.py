"""Timing: when a kind's message is due, computed in a real time zone. Pure; no clock reads.

A reminder's due time is found from a date of the subject (its start, its
check-in time) and an offset, in the venue's zone (or the recipient's, when
the kind says so). The offset has two parts that behave differently across
a DST change, on purpose:

- ``days`` are calendar days on the wall clock of the zone: "1 day before" a
  10:00 booking is 10:00 the day before, whether that day had 23, 24 or 25
  hours. ``at`` replaces the time of day ("the day before at 18:00").
- ``offset`` is elapsed time: "1 h before" is 3,600 seconds before.

A wall-clock time that does not exist (skipped by a spring change) is moved
forward by the length of the gap; one that happens twice (autumn) is the
first of the two. Results are aware datetimes in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class TimingMode(StrEnum):
    """How a kind's due time is found."""

    NOW = "now"  # as soon as the event is accepted
    AFTER_EVENT = "after_event"  # a delay after the event happened
    BEFORE_DATE = "before_date"  # an offset before a date of the subject (e.g. its start)
    DAILY = "daily"  # once a day at a time of day (a digest; planned by its own engine)


class TimeZoneChoice(StrEnum):
    """Whose wall clock calendar days and times of day are counted on."""

    VENUE = "venue"  # the subject's timezone, else the tenant's
    RECIPIENT = "recipient"  # the recipient's, else the venue's


@dataclass(frozen=True)
class Timing:
    """When a kind's message is due.

    ``offset`` is the delay after the event (``AFTER_EVENT``) or the elapsed
    lead time before the subject's ``date_field`` (``BEFORE_DATE``), to which
    ``days`` calendar days and the time of day ``at`` add. ``date_field`` may
    name fallbacks: ``"checkin_at|start"`` uses the start when there is no
    check-in time. ``min_lead`` drops the message when the subject was
    created less than that long before the date (the 24 h reminder only for
    bookings made 48 h ahead).
    """

    mode: TimingMode = TimingMode.NOW
    offset: timedelta = timedelta(0)
    date_field: str | None = None
    min_lead: timedelta | None = None
    days: int = 0
    at: time | None = None
    zone: TimeZoneChoice = TimeZoneChoice.VENUE

    def __post_init__(self) -> None:
        if self.mode is TimingMode.BEFORE_DATE and not self.date_field:
            raise ValueError("a timing before a date names the subject's date field")
        if self.mode is TimingMode.DAILY and self.at is None:
            raise ValueError("a daily timing names its time of day")
        if self.offset < timedelta(0):
            raise ValueError("a timing offset is a positive duration")
        if self.days < 0:
            raise ValueError("a timing counts a positive number of days")
        if self.min_lead is not None and self.min_lead < timedelta(0):
            raise ValueError("a minimum lead time is a positive duration")

    @classmethod
    def now(cls) -> Timing:
        return cls(TimingMode.NOW)

    @classmethod
    def after_event(cls, delay: timedelta) -> Timing:
        return cls(TimingMode.AFTER_EVENT, offset=delay)

    @classmethod
    def before(
        cls,
        date_field: str,
        offset: timedelta = timedelta(0),
        *,
        days: int = 0,
        at: time | None = None,
        min_lead: timedelta | None = None,
        zone: TimeZoneChoice = TimeZoneChoice.VENUE,
    ) -> Timing:
        return cls(
            TimingMode.BEFORE_DATE,
            offset=offset,
            date_field=date_field,
            min_lead=min_lead,
            days=days,
            at=at,
            zone=zone,
        )

    @classmethod
    def daily(cls, at: time, *, zone: TimeZoneChoice = TimeZoneChoice.VENUE) -> Timing:
        return cls(TimingMode.DAILY, at=at, zone=zone)

    @property
    def anchored(self) -> bool:
        """True when the due time follows a date of the subject (re-planned when it moves)."""
        return self.mode is TimingMode.BEFORE_DATE


def resolve_local(naive: datetime, zone: ZoneInfo) -> datetime:
    """A naive wall-clock reading in ``zone`` as a UTC instant (gap: forward; fold: first)."""
    # fold=0: in a spring gap zoneinfo takes the offset from before the gap, which
    # lands after it by exactly its length; in an autumn repeat, the first reading.
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def wall_clock(day: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The instant (UTC) of ``at`` on the local date of ``day`` in ``zone``."""
    return resolve_local(datetime.combine(day.astimezone(zone).date(), at), zone)


def before(
    anchor: datetime,
    zone: ZoneInfo,
    *,
    offset: timedelta = timedelta(0),
    days: int = 0,
    at: time | None = None,
) -> datetime:
    """``anchor`` moved back ``days`` calendar days (and to ``at``), then ``offset`` elapsed."""
    if days or at is not None:
        wall = anchor.astimezone(zone).replace(tzinfo=None) - timedelta(days=days)
        if at is not None:
            wall = datetime.combine(wall.date(), at)
        moved = resolve_local(wall, zone)
    else:
        moved = anchor.astimezone(UTC)
    return moved - offset


def next_daily(after: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The first ``at`` on the wall clock of ``zone`` not earlier than ``after``."""
    candidate = wall_clock(after, at, zone)
    if candidate >= after:
        return candidate
    next_day = after.astimezone(zone).date() + timedelta(days=1)
    return resolve_local(datetime.combine(next_day, at), zone)


def parse_aware(value: object) -> datetime | None:
    """An ISO 8601 instant with its offset, or None (absent, naive or malformed)."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if not isinstance(value, str):
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return None
    return instant if instant.tzinfo is not None else None
