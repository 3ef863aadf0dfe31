"""Notification kinds: the rules saying who hears about what, on which channel, and when.

A kind is data, not code: the catalogue is a tuple of :class:`NotificationKind`
values, looked up by the event type that triggers them. Adding a kind to the
catalogue (or a tenant switching one off) needs no change in the planner.
The kinds Courrier ships are in :mod:`courrier.domain.default_kinds`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from courrier.domain.conditions import Condition
from courrier.domain.followup import FollowUpPolicy
from courrier.domain.timing import TimeZoneChoice, Timing, TimingMode

__all__ = [
    "Catalogue",
    "Condition",
    "NotificationKind",
    "TimeZoneChoice",
    "Timing",
    "TimingMode",
]


@dataclass(frozen=True)
class NotificationKind:
    """One rule of the catalogue.

    ``recipients`` are roles (:mod:`courrier.domain.recipients`) resolved
    from the subject, the event and the tenant's staff; ``exclude`` roles
    are left out (a comment's author). ``priority``: higher leaves first.
    ``attachments`` name generated files (``ics.request``: a calendar
    invitation). ``preference_optional`` False means the recipient cannot
    switch it off (a password reset). ``once_per_subject`` True means one
    message per subject and recipient ever (a confirmation); False means one
    per subject version (a modification notice).

    ``conditions`` must hold on the subject's state when planned, re-planned
    and sent. ``replan`` True: planned from the subject's current state on
    every event about it (reminders), so moved ones move, invalid ones are
    cancelled and new ones appear. ``cancelled_by``: event types that
    cancel its pending messages for the subject (a payment drops the
    payment reminder).

    ``follow_up``: an important message's reminders while it is not read
    (:mod:`courrier.domain.followup`); None, the default, sends none.
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
    conditions: tuple[Condition, ...] = ()
    replan: bool = False
    cancelled_by: frozenset[str] = frozenset()
    exclude: tuple[str, ...] = ()
    description: str = ""
    follow_up: FollowUpPolicy | None = None

    @property
    def template_kind(self) -> str:
        """The template this kind renders (its own name unless set)."""
        return self.template or self.name

    def planned_on(self, event_type: str, subject_type: str) -> bool:
        """True when an event of this type about this subject type plans (or re-plans) it."""
        if subject_type != self.subject_type or event_type in self.cancelled_by:
            return False
        return event_type in self.triggers or self.replan


class Catalogue:
    """The kinds in force, found by the event type that triggers them."""

    def __init__(self, kinds: Iterable[NotificationKind]) -> None:
        self._kinds = tuple(kinds)
        names = [k.name for k in self._kinds]
        if len(set(names)) != len(names):
            raise ValueError(f"kind names repeat in the catalogue: {sorted(names)}")
        self._by_name = {k.name: k for k in self._kinds}
        self._by_trigger: dict[str, tuple[NotificationKind, ...]] = {}
        for kind in self._kinds:
            for trigger in kind.triggers:
                self._by_trigger[trigger] = (*self._by_trigger.get(trigger, ()), kind)
        #: for_subject_event's answers: asked for every event planned, and kinds never change
        self._planned: dict[tuple[str, str], tuple[NotificationKind, ...]] = {}

    def __iter__(self) -> Iterator[NotificationKind]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)

    def for_event(self, event_type: str) -> tuple[NotificationKind, ...]:
        """The kinds an event of this type triggers (none for an unknown type)."""
        return self._by_trigger.get(event_type, ())

    def for_subject_event(self, event_type: str, subject_type: str) -> tuple[NotificationKind, ...]:
        """The kinds planned when this event about this subject type arrives.

        Those it triggers, and the re-planned ones (reminders) of the subject
        type, unless the event cancels them.
        """
        found = self._planned.get((event_type, subject_type))
        if found is None:
            found = tuple(k for k in self._kinds if k.planned_on(event_type, subject_type))
            if len(self._planned) >= 1024:  # bounded, whatever event types callers send
                self._planned.clear()
            self._planned[(event_type, subject_type)] = found
        return found

    def cancelled_by(self, event_type: str, subject_type: str) -> tuple[NotificationKind, ...]:
        """The kinds whose pending messages this event cancels."""
        return tuple(
            k
            for k in self._kinds
            if k.subject_type == subject_type and event_type in k.cancelled_by
        )

    def get(self, name: str) -> NotificationKind | None:
        return self._by_name.get(name)

    def without(self, names: Iterable[str]) -> Catalogue:
        """This catalogue with some kinds switched off (a tenant's choice)."""
        off = set(names)
        return Catalogue(k for k in self._kinds if k.name not in off)

    def subject_types(self) -> frozenset[str]:
        return frozenset(k.subject_type for k in self._kinds)


def __getattr__(name: str) -> Catalogue:
    """``DEFAULT_CATALOGUE``, the kinds Courrier ships (defined in ``default_kinds``)."""
    if name == "DEFAULT_CATALOGUE":
        from courrier.domain.default_kinds import DEFAULT_CATALOGUE

        return DEFAULT_CATALOGUE
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
