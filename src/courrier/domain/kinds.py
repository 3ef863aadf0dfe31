"""Notification kinds: the rules saying who hears about what, on which channel, and when.

A kind is data, not code: the catalogue is a tuple of :class:`NotificationKind`
values, looked up by the event type that triggers them. Adding a kind to the
catalogue (or a tenant switching one off) needs no change in the planner.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum


class TimingMode(StrEnum):
    """How a kind's due time is found."""

    NOW = "now"  # as soon as the event is accepted
    AFTER_EVENT = "after_event"  # a delay after the event happened
    BEFORE_DATE = "before_date"  # an offset before a date of the subject (e.g. its start)


@dataclass(frozen=True)
class Timing:
    """When a kind's message is due.

    ``offset`` is the delay after the event (``AFTER_EVENT``) or the lead time
    before the subject's ``date_field`` (``BEFORE_DATE``). ``min_lead`` drops
    a ``BEFORE_DATE`` message when the event came less than that long before
    the date (the 24 h reminder only for bookings made 48 h ahead).
    """

    mode: TimingMode = TimingMode.NOW
    offset: timedelta = timedelta(0)
    date_field: str | None = None
    min_lead: timedelta | None = None

    def __post_init__(self) -> None:
        if self.mode is TimingMode.BEFORE_DATE and not self.date_field:
            raise ValueError("a timing before a date names the subject's date field")
        if self.offset < timedelta(0):
            raise ValueError("a timing offset is a positive duration")

    @classmethod
    def now(cls) -> Timing:
        return cls(TimingMode.NOW)

    @classmethod
    def after_event(cls, delay: timedelta) -> Timing:
        return cls(TimingMode.AFTER_EVENT, offset=delay)

    @classmethod
    def before(
        cls, date_field: str, offset: timedelta, *, min_lead: timedelta | None = None
    ) -> Timing:
        return cls(TimingMode.BEFORE_DATE, offset=offset, date_field=date_field, min_lead=min_lead)


@dataclass(frozen=True)
class NotificationKind:
    """One rule of the catalogue.

    ``recipients`` are role names resolved from the subject's state
    (``booker``, ``participants``...). ``priority``: higher leaves first.
    ``attachments`` name generated files (``ics.request``: a calendar
    invitation). ``preference_optional`` False means the recipient cannot
    switch it off (a password reset). ``once_per_subject`` True means one
    message per subject and recipient ever (a confirmation); False means one
    per subject version (a modification notice).
    """

    name: str
    triggers: frozenset[str]
    subject_type: str
    recipients: tuple[str, ...]
    channels: tuple[str, ...] = ("email",)
    template: str = ""
    timing: Timing = field(default_factory=Timing.now)
    priority: int = 50
    attachments: tuple[str, ...] = ()
    preference_optional: bool = True
    once_per_subject: bool = True

    @property
    def template_kind(self) -> str:
        """The template this kind renders (its own name unless set)."""
        return self.template or self.name


class Catalogue:
    """The kinds in force, found by the event type that triggers them."""

    def __init__(self, kinds: Iterable[NotificationKind]) -> None:
        self._kinds = tuple(kinds)
        names = [k.name for k in self._kinds]
        if len(set(names)) != len(names):
            raise ValueError(f"kind names repeat in the catalogue: {sorted(names)}")
        self._by_trigger: dict[str, tuple[NotificationKind, ...]] = {}
        for kind in self._kinds:
            for trigger in kind.triggers:
                self._by_trigger[trigger] = (*self._by_trigger.get(trigger, ()), kind)

    def __iter__(self) -> Iterator[NotificationKind]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)

    def for_event(self, event_type: str) -> tuple[NotificationKind, ...]:
        """The kinds an event of this type triggers (none for an unknown type)."""
        return self._by_trigger.get(event_type, ())

    def get(self, name: str) -> NotificationKind | None:
        return next((k for k in self._kinds if k.name == name), None)

    def without(self, names: Iterable[str]) -> Catalogue:
        """This catalogue with some kinds switched off (a tenant's choice)."""
        off = set(names)
        return Catalogue(k for k in self._kinds if k.name not in off)


BOOKING_CONFIRMATION = NotificationKind(
    name="booking.confirmation",
    triggers=frozenset({"booking.created"}),
    subject_type="booking",
    recipients=("booker",),
    channels=("email",),
    template="booking.confirmation",
    timing=Timing.now(),
    priority=60,
    attachments=("ics.request",),
)

#: The kinds Courrier ships with; later issues add to this tuple.
DEFAULT_CATALOGUE = Catalogue((BOOKING_CONFIRMATION,))
