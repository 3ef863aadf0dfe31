"""Formatting filters: a time kept by wall-clock time is what Babel writes for each instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from babel import Locale
from babel.dates import format_time
from hypothesis import given, settings
from hypothesis import strategies as st

from courrier.render.formats import FormatSettings, format_moment, time_zone

ZONES = ("Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC")
LOCALES = ("en", "fr", "fr_CA", "es", "nl", "ko", "zh", "ar")
FORMATS = ("short", "medium", "long", "full", "HH:mm", "h 'o''clock' a", "a K:mm", "HH:mm z")
#: instants on few times of day and many days, so that kept times are found again
INSTANTS = st.builds(
    lambda days, quarter: (
        datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=days, minutes=15 * quarter)
    ),
    st.integers(min_value=0, max_value=730),
    st.integers(min_value=0, max_value=95),
)


@settings(max_examples=400, deadline=None)
@given(
    moment=INSTANTS,
    zone=st.sampled_from(ZONES),
    locale=st.sampled_from(LOCALES),
    format=st.sampled_from(FORMATS),
)
def test_a_time_is_written_as_babel_writes_it(
    moment: datetime, zone: str, locale: str, format: str
) -> None:
    chosen, venue = Locale.parse(locale), time_zone(zone)
    written = format_moment("time", moment, format, FormatSettings(chosen, venue))
    local = moment.astimezone(venue)  # as the filter hands it to Babel
    assert written == str(format_time(local, format, tzinfo=venue, locale=chosen))
