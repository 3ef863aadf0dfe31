"""Planning: from an accepted event to the messages it calls for. Pure: no I/O, no clock.

The caller gives the kinds in force, the event, the subject's new state, the
recipients it resolved for each role and the current time; :func:`plan`
answers the messages to store. Each message carries its send key, unique per
tenant in the database, so planning the same thing twice (a retry, a race,
the same event posted under two keys) cannot store it twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from courrier.domain.conditions import failed_condition
from courrier.domain.kinds import NotificationKind
from courrier.domain.timing import TimeZoneChoice, Timing, TimingMode, before, parse_aware

MAX_SEND_KEY = 400


@dataclass(frozen=True)
class Recipient:
    """A person a message goes to, with their addresses per channel."""

    contact: str | None  # the contact's external id; None for a bare address
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    timezone: str | None = None

    def address_for(self, channel: str) -> str | None:
        """Where this recipient is reached on ``channel`` (None: not on that channel)."""
        if channel == "email":
            return self.email
        if channel == "sms":
            return self.phone
        return None


@dataclass(frozen=True)
class EventFacts:
    """What planning needs to know about the event: its type, time and subject."""

    type: str
    occurred_at: datetime
    subject_type: str
    subject_id: str
    subject_version: int = 1
    payload: Mapping[str, Any] = field(default_factory=dict)
    subject_created_at: datetime | None = None  # for lead-time rules; else occurred_at


@dataclass(frozen=True)
class PlannedMessage:
    """One message to store: a kind, for one recipient, on one channel, due at a time."""

    kind: NotificationKind
    role: str
    recipient: Recipient
    channel: str
    address: str
    due_at: datetime
    priority: int
    occurrence: str
    send_key: str
    #: when it should have been due, if that time had passed when planned (due_at is then now)
    late_since: datetime | None = None


def planned_again(message: PlannedMessage, event: EventFacts) -> PlannedMessage:
    """The message under a key of its own for this subject version.

    For a reminder whose key belongs to a message cancelled earlier (the
    booking moved away, then back): the cancelled one stays as it ended, and
    this one is a new send, still unique per version.
    """
    occurrence = f"{message.occurrence}@v{event.subject_version}"
    who = message.recipient.contact if message.recipient.contact is not None else message.address
    key = send_key(
        event.subject_type, event.subject_id, message.kind.name, who, message.channel, occurrence
    )
    return replace(message, occurrence=occurrence, send_key=key)


def send_key_part(part: str) -> str:
    """One part of a send key, ``%`` and ``:`` percent-escaped."""
    return part.replace("%", "%25").replace(":", "%3A")


_escape = send_key_part


def send_key(
    subject_type: str, subject_id: str, kind: str, recipient: str, channel: str, occurrence: str
) -> str:
    """``subject_type:subject_id:kind:recipient:channel:occurrence``, each part escaped.

    ``%`` and ``:`` inside a part are percent-escaped, so two different
    tuples never give the same key; a key longer than the column keeps a
    readable head and ends with the SHA-256 of the whole.
    """
    parts = (subject_type, subject_id, kind, recipient, channel, occurrence)
    return bounded_key(":".join(_escape(p) for p in parts))


#: the kind a one-off message (``POST /v1/messages``) is stored as, and its send key's first
#: part (no dot: never a kind of the catalogue)
DIRECT = "direct"


def direct_send_key(idempotency_key: str) -> str:
    """``direct:<idempotency key>``, the key escaped as a part of :func:`send_key` is.

    Escaped, it cannot pass for another message's key: a planned message's
    has six parts (``direct`` is a valid subject type) and a follow-up's adds
    two (``<original's key>:follow-up:<n>``), where this one has two. Taken
    as it came, the key ``renewal:follow-up:1`` named the first follow-up of
    the one-off message ``renewal``, which a second post then "replayed"
    instead of sending.
    """
    return bounded_key(f"{DIRECT}:{_escape(idempotency_key)}")


def bounded_key(key: str) -> str:
    """``key`` if it fits the column, else a readable head ending with the SHA-256 of the whole."""
    if len(key) <= MAX_SEND_KEY:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: MAX_SEND_KEY - len(digest) - 2]}:#{digest}"


def recipient_ids(role: str, subject_state: Mapping[str, Any]) -> list[str]:
    """The contact ids a role names in the subject's state.

    A role is a field of the subject holding one contact id (``booker``) or a
    list of them (``participants``); an absent field names nobody.
    """
    value = subject_state.get(role)
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


def roles_of(kinds: Iterable[NotificationKind]) -> set[str]:
    """Every role the kinds send to (to resolve them all in one go)."""
    return {role for kind in kinds for role in kind.recipients}


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def anchor_date(
    timing: Timing,
    subject_state: Mapping[str, Any],
    dates: dict[str, datetime | None] | None = None,
) -> datetime | None:
    """The subject's date a timing counts from: the first of its ``a|b`` fields present.

    ``dates``: the dates already read from this state, by ``date_field`` (read once for
    the several reminders of one event).
    """
    fields = timing.date_field or ""
    if dates is not None and fields in dates:
        return dates[fields]
    found = None
    for name in fields.split("|"):
        found = parse_aware(subject_state.get(name))
        if found is not None:
            break
    if dates is not None:
        dates[fields] = found
    return found


def due_time(
    timing: Timing,
    event: EventFacts,
    subject_state: Mapping[str, Any],
    now: datetime,
    zone: str | None = None,
    dates: dict[str, datetime | None] | None = None,
) -> tuple[datetime, str] | None:
    """When a message of this timing is due, and its occurrence; None when it is not wanted.

    ``zone`` is whose wall clock calendar days count on (the venue's, or the
    recipient's); it defaults to the subject's ``timezone``. The time may be
    in the past (a reminder whose date has not passed: :func:`plan` marks it
    late); one for a date gone by, or for a subject created too short a time
    ahead (``min_lead``), is not wanted. The occurrence of a reminder is its date, so a reminder is sent
    again for a new date but never twice for one. ``dates``: see :func:`anchor_date`.
    """
    if timing.mode is TimingMode.NOW:
        return now, "1"
    if timing.mode is TimingMode.AFTER_EVENT:
        return event.occurred_at + timing.offset, "1"
    if timing.mode is TimingMode.DAILY:
        return None  # planned by its own engine (the staff digest)
    date = anchor_date(timing, subject_state, dates)
    if date is None or date <= now:
        return None
    created = event.subject_created_at or event.occurred_at
    if timing.min_lead is not None and date - created < timing.min_lead:
        return None
    wall = _zone(zone or subject_state.get("timezone"))
    due = before(date, wall, offset=timing.offset, days=timing.days, at=timing.at)
    return due, date.astimezone(UTC).isoformat()


def _occurrence(kind: NotificationKind, timed: str, event: EventFacts) -> str:
    if kind.timing.mode is TimingMode.BEFORE_DATE or kind.once_per_subject:
        return timed
    return f"v{event.subject_version}"


def _zone_for(kind: NotificationKind, recipient: Recipient, state: Mapping[str, Any]) -> str | None:
    if kind.timing.zone is TimeZoneChoice.RECIPIENT and recipient.timezone:
        return recipient.timezone
    zone = state.get("timezone")
    return zone if isinstance(zone, str) else None


def plan(
    kinds: Sequence[NotificationKind],
    event: EventFacts,
    subject_state: Mapping[str, Any],
    recipients_by_role: Mapping[str, Sequence[Recipient]],
    now: datetime,
) -> list[PlannedMessage]:
    """The messages ``event`` calls for, at most one per (kind, recipient, channel).

    Kinds not planned on this event type (neither triggered nor re-planned),
    or for another subject type, or whose conditions fail, plan nothing; a
    recipient with no address on a channel is skipped, and so is anyone a
    kind's ``exclude`` roles name (``recipients_by_role`` holds those roles
    too).
    """
    planned: dict[str, PlannedMessage] = {}
    dates: dict[str, datetime | None] = {}
    for kind in kinds:
        if not kind.planned_on(event.type, event.subject_type):
            continue
        if not _may_be_due(kind.timing, subject_state, now, dates):
            continue  # for no recipient: its date is gone by (a past booking imported, say)
        if failed_condition(kind.conditions, subject_state, event.payload) is not None:
            continue
        excluded = (
            {r.contact for role in kind.exclude for r in recipients_by_role.get(role, ())}
            if kind.exclude
            else ()
        )
        for role in kind.recipients:
            for recipient in recipients_by_role.get(role, ()):
                if recipient.contact is not None and recipient.contact in excluded:
                    continue
                zone = _zone_for(kind, recipient, subject_state)
                timed = due_time(kind.timing, event, subject_state, now, zone, dates)
                if timed is None:
                    continue
                due, occurrence = timed[0], _occurrence(kind, timed[1], event)
                late = due if due < now else None
                for message in _per_channel(
                    kind, role, recipient, event, max(due, now), occurrence, late
                ):
                    planned.setdefault(message.send_key, message)
    return list(planned.values())


def _may_be_due(
    timing: Timing,
    subject_state: Mapping[str, Any],
    now: datetime,
    dates: dict[str, datetime | None],
) -> bool:
    """False when :func:`due_time` is None for every recipient: a daily kind (planned by its
    own engine), or one before a date the subject lacks or that has passed."""
    if timing.mode is TimingMode.DAILY:
        return False
    if timing.mode is not TimingMode.BEFORE_DATE:
        return True
    date = anchor_date(timing, subject_state, dates)
    return date is not None and date > now


def _per_channel(
    kind: NotificationKind,
    role: str,
    recipient: Recipient,
    event: EventFacts,
    due_at: datetime,
    occurrence: str,
    late_since: datetime | None = None,
) -> Iterable[PlannedMessage]:
    """One message per channel of the kind on which the recipient has an address."""
    for channel in kind.channels:
        address = recipient.address_for(channel)
        if not address:
            continue
        who = recipient.contact if recipient.contact is not None else address
        yield PlannedMessage(
            kind=kind,
            role=role,
            recipient=recipient,
            channel=channel,
            address=address,
            due_at=due_at,
            priority=kind.priority,
            occurrence=occurrence,
            send_key=send_key(
                event.subject_type, event.subject_id, kind.name, who, channel, occurrence
            ),
            late_since=late_since,
        )
