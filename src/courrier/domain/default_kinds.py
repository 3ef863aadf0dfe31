"""The default catalogue: every kind Courrier ships, as data (DESIGN.md "Default catalogue").

Bookings, visits, requests, members and resources. Each tenant may switch
a kind off, change its timing and conditions and override its templates
(:mod:`courrier.store.kinds`); nothing here is specific to one tenant.
"""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

from courrier.domain.conditions import Condition
from courrier.domain.kinds import Catalogue, NotificationKind
from courrier.domain.timing import Timing

BOOKING_ENDED = frozenset({"booking.cancelled"})
VISIT_ENDED = frozenset({"visit.cancelled"})
#: reminders only for a booking that stands
CONFIRMED = Condition("status", "in", ["confirmed"])
BOOKING_PEOPLE = ("booker", "participants")
ICS = ("ics.request",)


def _kind(
    name: str, on: str | set[str] | None, subject: str, to: tuple[str, ...], **kw: Any
) -> NotificationKind:
    triggers = frozenset({on} if isinstance(on, str) else on or ())
    return NotificationKind(name=name, triggers=triggers, subject_type=subject, recipients=to, **kw)


def _reminder(name: str, timing: Timing, description: str) -> NotificationKind:
    return _kind(
        name,
        None,
        "booking",
        BOOKING_PEOPLE,
        timing=timing,
        priority=55,
        conditions=(CONFIRMED,),
        replan=True,
        cancelled_by=BOOKING_ENDED,
        description=description,
    )


BOOKING_CONFIRMATION = _kind(
    "booking.confirmation",
    "booking.created",
    "booking",
    ("booker",),
    priority=60,
    attachments=ICS,
    description="Confirmation of a new booking, with its calendar invitation.",
)

BOOKING_KINDS = (
    BOOKING_CONFIRMATION,
    _kind(
        "booking.manager_notice",
        "booking.created",
        "booking",
        ("manager",),
        description="Notice of a new booking to the responsible manager.",
    ),
    _kind(
        "booking.staff_copy",
        "booking.created",
        "booking",
        ("booking_copy:each",),
        description="Copy of every new booking to staff who asked for one each time.",
    ),
    _kind(
        "booking.payment_reminder",
        "booking.created",
        "booking",
        ("booker",),
        timing=Timing.after_event(timedelta(minutes=10)),
        conditions=(Condition("paid", "eq", False), Condition("status", "ne", "cancelled")),
        cancelled_by=frozenset({"booking.paid", "booking.cancelled"}),
        description="Payment reminder 10 minutes after a booking still unpaid.",
    ),
    _reminder(
        "booking.reminder_24h",
        Timing.before("start", days=1, min_lead=timedelta(hours=48)),
        "Reminder the day before, at the same time (only for bookings made 48 h ahead).",
    ),
    _reminder(
        "booking.reminder_1h", Timing.before("start", timedelta(hours=1)), "Reminder 1 h before."
    ),
    _reminder(
        "booking.reminder_30min",
        Timing.before("start", timedelta(minutes=30)),
        "Reminder 30 minutes before.",
    ),
    _reminder(
        "booking.checkin_notice",
        Timing.before("checkin_at|start"),
        "Notice at check-in time (the start when there is none).",
    ),
    _kind(
        "booking.modified",
        "booking.modified",
        "booking",
        BOOKING_PEOPLE,
        attachments=ICS,
        once_per_subject=False,
        description="The booking changed: old and new values, an updated invitation.",
    ),
    _kind(
        "booking.cancelled",
        "booking.cancelled",
        "booking",
        BOOKING_PEOPLE,
        attachments=("ics.cancel",),
        priority=60,
        description="The booking is cancelled; its invitation withdrawn.",
    ),
    _kind(
        "booking.validated",
        "booking.validated",
        "booking",
        ("booker",),
        attachments=ICS,
        priority=60,
        description="A pending booking is validated (a place came free).",
    ),
    _kind(
        "booking.approval_needed",
        "booking.approval_requested",
        "booking",
        ("manager",),
        priority=60,
        description="A booking waits for the manager's approval.",
    ),
    _kind("booking.approved", "booking.approved", "booking", ("booker",), priority=60),
    _kind("booking.rejected", "booking.rejected", "booking", ("booker",), priority=60),
    _kind(
        "booking.participant_added",
        "booking.participant_added",
        "booking",
        ("event.participant",),
        once_per_subject=False,
        description="To the participant just added to a booking.",
    ),
    _kind(
        "booking.services_added",
        "booking.services_added",
        "booking",
        ("booker",),
        once_per_subject=False,
        description="Extra services were added to the booking.",
    ),
    _kind(
        "booking.staff_digest",
        None,
        "booking",
        ("booking_copy:digest",),
        timing=Timing.daily(time(18, 0)),
        description="One mail a day listing the day's new bookings, at 18:00 venue time.",
    ),
)

VISIT_KINDS = (
    _kind("visit.created", "visit.created", "visit", ("visitor",), attachments=ICS),
    _kind(
        "visit.modified",
        "visit.modified",
        "visit",
        ("visitor",),
        attachments=ICS,
        once_per_subject=False,
    ),
    _kind("visit.cancelled", "visit.cancelled", "visit", ("visitor",), attachments=("ics.cancel",)),
    _kind(
        "visit.reminder_24h",
        None,
        "visit",
        ("visitor",),
        timing=Timing.before("start", days=1, min_lead=timedelta(hours=48)),
        replan=True,
        conditions=(Condition("status", "ne", "cancelled"),),
        cancelled_by=VISIT_ENDED,
        description="Reminder the day before (only for visits planned 48 h ahead).",
    ),
    _kind(
        "visit.checkin",
        "visit.checked_in",
        "visit",
        ("host", "cohosts"),
        channels=("email", "push"),
        priority=70,
        description="The visitor has arrived: to the host and co-hosts, by email and push.",
    ),
)

REQUEST_KINDS = (
    _kind(
        "request.new",
        "request.created",
        "request",
        ("category_managers", "assigned_manager", "default_manager"),
        priority=80,
    ),
    _kind(
        "request.assigned",
        "request.assigned",
        "request",
        ("assigned_manager",),
        once_per_subject=False,
    ),
    _kind(
        "request.comment_public",
        "request.commented",
        "request",
        ("requester", "assigned_manager", "followers"),
        exclude=("event.author",),
        conditions=(Condition("event.visibility", "eq", "public"),),
        once_per_subject=False,
    ),
    _kind(
        "request.comment_internal",
        "request.commented",
        "request",
        ("managers",),
        exclude=("event.author",),
        conditions=(Condition("event.visibility", "eq", "internal"),),
        once_per_subject=False,
    ),
    _kind(
        "request.follower_added",
        "request.follower_added",
        "request",
        ("event.follower",),
        once_per_subject=False,
    ),
    _kind(
        "request.status_changed",
        "request.status_changed",
        "request",
        ("requester", "followers"),
        once_per_subject=False,
    ),
)

MEMBER_KINDS = (
    _kind(
        "member.validity_expiring",
        "member.validity_expiring",
        "membership",
        ("member", "staff:validities:all"),
        once_per_subject=False,
    ),
    _kind(
        "member.balance_low",
        "member.balance_low",
        "membership",
        ("member",),
        once_per_subject=False,
    ),
    _kind(
        "member.password_reset",
        "member.password_reset",
        "membership",
        ("member",),
        priority=100,
        preference_optional=False,
        once_per_subject=False,
        description="Password reset link: immediate, top priority, never switched off.",
    ),
)

RESOURCE_KINDS = (
    _kind(
        "resource.maintenance_start",
        "resource.maintenance_started",
        "resource",
        ("resource_bookers", "subscribers"),
        once_per_subject=False,
    ),
    _kind(
        "resource.maintenance_end",
        "resource.maintenance_ended",
        "resource",
        ("resource_bookers", "subscribers"),
        once_per_subject=False,
    ),
)

DEFAULT_KINDS: tuple[NotificationKind, ...] = (
    *BOOKING_KINDS,
    *VISIT_KINDS,
    *REQUEST_KINDS,
    *MEMBER_KINDS,
    *RESOURCE_KINDS,
)

#: The kinds Courrier ships with, as a catalogue.
DEFAULT_CATALOGUE = Catalogue(DEFAULT_KINDS)
