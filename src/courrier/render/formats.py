"""Template filters that format dates, times and amounts the recipient's way (Babel).

A template renders for one recipient: the *locale* (language and regional
conventions) is the recipient's, the *zone* is the venue's — a member
abroad still sees the hour at which the aircraft or the court is booked.
Both are chosen by :class:`~courrier.render.templates.TemplateRenderer` and
handed to the filters through the template context (``_format``).

Filters (the format is ``short``, ``medium``, ``long``, ``full`` or a
Babel/CLDR pattern such as ``"EEEE d MMMM"``):

* ``{{ start|datetime }}``, ``{{ start|datetime("long", tz="America/New_York") }}``
* ``{{ start|date("full") }}`` (a plain date such as ``"2026-04-01"`` too)
* ``{{ start|time("short") }}``
* ``{{ amount|money("EUR") }}``

A language's ``strings`` file names its phrases for an instant with the
``moment_phrase`` global: ``{% set when = moment_phrase("full", " à ", "short") %}``
makes ``s.when(start)`` write the date, ``" à "`` and the time. A phrase is
a Python callable rather than a Jinja macro because every booking message
calls several: a macro call costs a new frame and a context, and a phrase
remembers what it wrote for the few instants a batch repeats.

Instants may be aware datetimes or ISO 8601 strings; naive ones are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Literal, cast, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_time, get_time_format
from babel.numbers import format_currency
from jinja2 import pass_context, pass_eval_context
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from markupsafe import Markup

CONTEXT_KEY = "_format"


@dataclass(frozen=True, slots=True)
class FormatSettings:
    """The locale and the zone the filters format in, for one rendering."""

    locale: Locale
    zone: ZoneInfo


@lru_cache(maxsize=256)
def babel_locale(name: str) -> Locale | None:
    """Babel's locale for ``fr_BE`` / ``fr-BE`` / ``fr``, or None when Babel does not know it."""
    try:
        return Locale.parse(name.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


@lru_cache(maxsize=512)
def time_zone(name: str) -> ZoneInfo:
    """The zone called ``name``; ValueError (shown as a template error) when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _settings(context: Context) -> FormatSettings:
    settings = context.get(CONTEXT_KEY)
    if not isinstance(settings, FormatSettings):
        raise RuntimeError("formatting filters need a TemplateRenderer context")
    return settings


def _instant(value: Any, zone: ZoneInfo) -> datetime:
    """``value`` (aware datetime or ISO 8601 text) as a datetime in ``zone``."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a date and time, got {type(value).__name__}")
    if value.utcoffset() is None:
        raise ValueError(f"the time {value.isoformat()} has no time zone")
    return value.astimezone(zone)


def _calendar_date(value: Any) -> date | None:
    """A date without a time (``2026-04-01`` or a ``date``), which has no zone to convert to."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _zone(settings: FormatSettings, tz: str | None) -> ZoneInfo:
    return settings.zone if tz is None else time_zone(tz)


@lru_cache(maxsize=4096)
def _format_instant(what: str, value: Any, format: str, zone: ZoneInfo, locale: Locale) -> str:
    """An instant formatted as a ``datetime``, ``date`` or ``time`` in ``zone`` and ``locale``.

    Cached: the same start is shown in the subject, the text and the HTML,
    and the same few times recur across a batch of messages.
    """
    if what == "date" and (day := _calendar_date(value)) is not None:
        return _format_day(day, format, locale)
    moment = _instant(value, zone)
    if what == "date":
        return _format_day(moment.date(), format, locale)
    if what == "time":
        return _format_time(moment, format, zone, locale)
    return str(format_datetime(moment, format, tzinfo=zone, locale=locale))


def _format_time(moment: datetime, format: str, zone: ZoneInfo, locale: Locale) -> str:
    """The time of an instant (already in ``zone``) formatted.

    A format made of time-of-day fields only (``short`` is ``HH:mm`` or
    ``h:mm a``) writes the same for every instant showing the same
    wall-clock time, and a batch's many starts fall on few times of day:
    such texts are kept by wall-clock time (the rest, with a zone or a
    date in them, are formatted each time).
    """
    if not _time_of_day_only(format, locale):
        return str(format_time(moment, format, tzinfo=zone, locale=locale))
    key = (moment.time(), format, locale)
    text = _CLOCK_TIMES.get(key)
    if text is None:
        if len(_CLOCK_TIMES) >= _CLOCK_TIMES_KEPT:
            _CLOCK_TIMES.clear()
        text = _CLOCK_TIMES[key] = str(format_time(moment, format, tzinfo=zone, locale=locale))
    return text


#: time texts by wall-clock time, format and locale (see :func:`_format_time`)
_CLOCK_TIMES: dict[tuple[time, str, Locale], str] = {}
_CLOCK_TIMES_KEPT = 4096
_FormatName = Literal["full", "long", "medium", "short"]
_FORMAT_NAMES = frozenset(get_args(_FormatName))
#: CLDR fields of the time of day alone: hours, minutes, seconds, fractions, AM/PM
_TIME_OF_DAY_FIELDS = frozenset("hHkKmsSa")


@lru_cache(maxsize=256)
def _time_of_day_only(format: str, locale: Locale) -> bool:
    """True when ``format`` (a name or a CLDR pattern) has no field but the time of day."""
    if format in _FORMAT_NAMES:
        pattern = get_time_format(cast(_FormatName, format), locale=locale).pattern
    else:
        pattern = format
    unquoted = re.sub("'[^']*'", "", pattern)
    return {c for c in unquoted if c.isascii() and c.isalpha()} <= _TIME_OF_DAY_FIELDS


@lru_cache(maxsize=1024)
def _format_day(day: date, format: str, locale: Locale) -> str:
    """A calendar day formatted (Babel formats a datetime's date alone): a batch's many
    starts and ends fall on few days, so this cache hits where the instants' misses."""
    return str(format_date(day, format, locale=locale))


@pass_context
def datetime_filter(
    context: Context, value: Any, format: str = "medium", tz: str | None = None
) -> str:
    """Date and time of an instant, in the venue's zone (or ``tz``)."""
    settings = _settings(context)
    return _format_instant("datetime", value, format, _zone(settings, tz), settings.locale)


@pass_context
def date_filter(context: Context, value: Any, format: str = "medium", tz: str | None = None) -> str:
    """The calendar date of an instant in the venue's zone (or ``tz``)."""
    settings = _settings(context)
    return _format_instant("date", value, format, _zone(settings, tz), settings.locale)


@pass_context
def time_filter(context: Context, value: Any, format: str = "short", tz: str | None = None) -> str:
    """The wall-clock time of an instant in the venue's zone (or ``tz``)."""
    settings = _settings(context)
    return _format_instant("time", value, format, _zone(settings, tz), settings.locale)


@pass_context
def money_filter(context: Context, amount: Any, currency: str) -> str:
    """An amount in ``currency`` (ISO 4217), e.g. ``12,50 €`` in French."""
    text = _amount_text(amount)
    return _format_money(text, currency, _settings(context).locale)


def format_money(amount: Any, currency: str, settings: FormatSettings) -> str:
    """What ``{{ amount|money(currency) }}`` writes with these settings."""
    return _format_money(_amount_text(amount), currency, settings.locale)


def format_moment(what: str, value: Any, format: str, settings: FormatSettings) -> str:
    """What the ``date``, ``time`` or ``datetime`` filter (``what``) writes with these settings."""
    return _format_instant(what, value, format, settings.zone, settings.locale)


def _amount_text(amount: Any) -> str:
    text = str(amount)
    try:
        Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {amount!r}") from exc
    return text


@lru_cache(maxsize=1024)
def _format_money(amount: str, currency: str, locale: Locale) -> str:
    """Cached: Babel's currency formatting costs a sixth of a booking message, and prices recur."""
    return str(format_currency(Decimal(amount), currency, locale=locale))


class MomentPhrase:
    """``s.when(start)``: an instant's date, then a joiner and its time (when given a time format).

    Written as the macro ``{{ moment|date(...) }}{joiner}{{ moment|time(...) }}``
    would be, and like a macro it is markup when called from an HTML template.
    """

    _KEPT = 1024  # instants remembered per phrase, a bound for long-running workers

    def __init__(
        self, settings: FormatSettings, date_format: str, joiner: str, time_format: str | None
    ) -> None:
        self._settings = settings
        self._formats = (date_format, joiner, time_format)
        self._written: dict[Any, str] = {}

    @pass_eval_context
    def __call__(self, eval_context: EvalContext, moment: Any) -> str:
        text = self.text(moment)
        # as a macro does: markup in HTML (Babel's words for a date, not the caller's text)
        return Markup(text) if eval_context.autoescape else text  # noqa: S704

    def text(self, moment: Any) -> str:
        """The phrase for ``moment`` as plain text (what a template that is not HTML gets)."""
        text = self._written.get(moment)
        if text is None:
            if len(self._written) >= self._KEPT:
                self._written.clear()
            text = self._written[moment] = self._write(moment)
        return text

    def _write(self, moment: Any) -> str:
        date_format, joiner, time_format = self._formats
        zone, locale = self._settings.zone, self._settings.locale
        text = _format_instant("date", moment, date_format, zone, locale)
        if time_format is None:
            return text
        return text + joiner + _format_instant("time", moment, time_format, zone, locale)


@pass_context
def moment_phrase(
    context: Context, date_format: str, joiner: str = "", time_format: str | None = None
) -> MomentPhrase:
    """The ``strings`` files' phrases for an instant (see :class:`MomentPhrase`)."""
    return MomentPhrase(_settings(context), date_format, joiner, time_format)


GLOBALS = {"moment_phrase": moment_phrase}
FILTERS = {
    "datetime": datetime_filter,
    "date": date_filter,
    "time": time_filter,
    "money": money_filter,
}
