"""VTIMEZONE components generated from the system's zoneinfo data.

A calendar invitation written with ``DTSTART;TZID=Europe/Paris:...`` must
carry the rules of that zone, or clients guess. Courrier writes them for a
narrow range only — the calendar years the event touches — with one
explicit STANDARD or DAYLIGHT part per change of offset and no RRULE or
multi-valued RDATE, because some widely used parsers read only the first
value of an RDATE and then put times after a DST change an hour off.

Each part's ``DTSTART`` is the local wall time at which it starts, read in
the offset in force just before (``TZOFFSETFROM``), as RFC 5545 section
3.6.5 says. A first part states the offset in force at the start of the
range, so every instant in the range resolves.

Finding the changes scans the zone every 12 hours and bisects to the second;
the text is cached per (zone, first year, last year).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from courrier.errors import ValidationError

_STEP = 12 * 3600  # seconds between samples when looking for a change of offset


@dataclass(frozen=True, slots=True)
class ZonePeriod:
    """From ``onset`` (UTC) on, the zone reads ``offset`` under the name ``name``."""

    onset: datetime
    offset_before: timedelta
    offset: timedelta
    name: str
    daylight: bool


def zone(name: str) -> ZoneInfo:
    """The zoneinfo zone called ``name``, or ValidationError naming the ``timezone`` field."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"unknown time zone {name!r}", field="timezone") from exc


def _state(tz: ZoneInfo, timestamp: int) -> tuple[timedelta, str, bool]:
    """Offset, abbreviation and daylight flag of ``tz`` at a UTC timestamp."""
    local = datetime.fromtimestamp(timestamp, tz)
    offset, dst = local.utcoffset(), local.dst()
    assert offset is not None  # a ZoneInfo always answers for an aware datetime
    return offset, local.tzname() or "", bool(dst)


def periods(name: str, first_year: int, last_year: int) -> list[ZonePeriod]:
    """The periods of zone ``name`` from 1 January of ``first_year`` to the end of ``last_year``.

    The first period starts at the range's start with the offset then in
    force; each next one starts at a change of offset, name or DST flag.
    """
    tz = zone(name)
    start = int(datetime(first_year, 1, 1, tzinfo=tz).timestamp())
    end = int(datetime(last_year + 1, 1, 1, tzinfo=tz).timestamp())
    state = _state(tz, start)
    found = [ZonePeriod(datetime.fromtimestamp(start, UTC), state[0], *state)]
    low = start
    while low < end:
        high = min(low + _STEP, end)
        later = _state(tz, high)
        if later != state:
            change = _first_change(tz, low, high, state)
            after = _state(tz, change)
            found.append(ZonePeriod(datetime.fromtimestamp(change, UTC), state[0], *after))
            state, low = after, change
        else:
            low = high
    return found


def _first_change(tz: ZoneInfo, low: int, high: int, state: tuple[timedelta, str, bool]) -> int:
    """The first second in (low, high] where ``tz`` no longer reads ``state``."""
    while high - low > 1:
        middle = (low + high) // 2
        if _state(tz, middle) == state:
            low = middle
        else:
            high = middle
    return high


def format_offset(offset: timedelta) -> str:
    """``+0100``, ``-0430``, or ``+051036`` when seconds are needed (RFC 5545 UTC-OFFSET)."""
    seconds = int(offset.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}{minutes:02d}" + (f"{secs:02d}" if secs else "")


@lru_cache(maxsize=256)
def vtimezone(name: str, first_year: int, last_year: int) -> str:
    """The VTIMEZONE component for ``name`` over those years, CRLF lines, ending in CRLF."""
    lines = ["BEGIN:VTIMEZONE", f"TZID:{name}"]
    for period in periods(name, first_year, last_year):
        kind = "DAYLIGHT" if period.daylight else "STANDARD"
        onset = (period.onset + period.offset_before).strftime("%Y%m%dT%H%M%S")
        lines += [
            f"BEGIN:{kind}",
            f"DTSTART:{onset}",
            f"TZOFFSETFROM:{format_offset(period.offset_before)}",
            f"TZOFFSETTO:{format_offset(period.offset)}",
        ]
        if period.name and period.name.isascii() and period.name.isprintable():
            lines.append(f"TZNAME:{period.name}")
        lines.append(f"END:{kind}")
    lines.append("END:VTIMEZONE")
    return "\r\n".join(lines) + "\r\n"
