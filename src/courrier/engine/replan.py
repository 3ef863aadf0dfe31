"""Re-planning: a subject's pending messages brought in line with its new state.

When an event about a subject arrives, in the same transaction as the
event: messages of kinds the event cancels are cancelled with the reason;
for kinds planned from the subject's current state (reminders), the
messages wanted now are matched with those pending, slot by slot (kind,
recipient, channel): a match moves (new due time, new content), a pending
message no longer wanted is cancelled saying why, and a wanted one with no
match is planned. A reminder whose time has already passed (a booking made
or moved 45 minutes ahead has no "1 h before") is not planned, and a pending
one moved into the past is cancelled; one merely overdue stays as it is.
Nothing here does I/O; intake reads and writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from courrier.domain.conditions import failed_condition
from courrier.domain.kinds import Catalogue, NotificationKind
from courrier.domain.planning import EventFacts, PlannedMessage, anchor_date, due_time
from courrier.domain.timing import TimingMode
from courrier.store.planning import PendingMessage

Slot = tuple[str, int | None, str, str]  # kind, contact row id, address (no contact), channel


@dataclass
class Reconciled:
    """What one event does to its subject's messages."""

    new: list[PlannedMessage] = field(default_factory=list)
    moved: list[tuple[PendingMessage, PlannedMessage]] = field(default_factory=list)
    cancelled: list[tuple[PendingMessage, str]] = field(default_factory=list)


def _slot(kind: str, contact_id: int | None, address: str, channel: str) -> Slot:
    return (kind, contact_id, "" if contact_id is not None else address, channel)


def reconcile(
    catalogue: Catalogue,
    event: EventFacts,
    state: Mapping[str, Any],
    pending: Sequence[PendingMessage],
    planned: Sequence[PlannedMessage],
    contact_ids: Mapping[str, int],
    now: datetime,
) -> Reconciled:
    """Split planned messages into new and moved ones; say which pending ones to cancel.

    ``pending`` is the subject's messages not yet claimed; the result's
    ``cancelled`` come out of it, with a reason a person can read.
    """
    result = Reconciled()
    open_slots: dict[Slot, PendingMessage] = {}
    if pending:  # a new subject (most events of a batch) has none: no kinds to look up
        ending = {k.name for k in catalogue.cancelled_by(event.type, event.subject_type)}
        replanned = {
            k.name for k in catalogue.for_subject_event(event.type, event.subject_type) if k.replan
        }
        for waiting in pending:
            if waiting.kind in ending:
                result.cancelled.append((waiting, f"cancelled by {event.type}"))
            elif waiting.kind in replanned:
                slot = _slot(waiting.kind, waiting.contact_id, waiting.address, waiting.channel)
                open_slots[slot] = waiting
    for message in planned:
        contact = message.recipient.contact
        contact_id = contact_ids.get(contact) if contact is not None else None
        wanted = _slot(message.kind.name, contact_id, message.address, message.channel)
        match = open_slots.pop(wanted, None) if message.kind.replan else None
        late = message.late_since
        if match is None:
            if late is None:  # a reminder whose time had passed when first planned is not sent
                result.new.append(message)
        elif late is None:  # moved, or the same time with content from the new state
            result.moved.append((match, message))
        elif match.send_key == message.send_key and match.due_at == late:
            result.moved.append((match, replace(message, due_at=late)))  # overdue: left as it is
        else:
            result.cancelled.append(
                (match, f"{event.type}: its time ({late.isoformat()}) has passed")
            )
    for left in open_slots.values():
        kind = catalogue.get(left.kind)
        reason = why_not_wanted(kind, event, state, now) if kind else "its kind was removed"
        result.cancelled.append((left, reason))
    return result


def why_not_wanted(
    kind: NotificationKind, event: EventFacts, state: Mapping[str, Any], now: datetime
) -> str:
    """Why a pending message of ``kind`` is no longer wanted for the subject's state."""
    reason = failed_condition(kind.conditions, state, event.payload)
    if reason is not None:
        return f"{event.type}: {reason}"
    timing = kind.timing
    if timing.mode is TimingMode.BEFORE_DATE:
        date = anchor_date(timing, state)
        if date is None:
            return f"{event.type}: the subject has no {timing.date_field} any more"
        if date <= now:
            return f"{event.type}: {timing.date_field} is now {date.isoformat()}, already past"
        if due_time(timing, event, state, now) is None:
            return f"{event.type}: {timing.date_field} is now {date.isoformat()}, too soon for it"
    return f"{event.type}: the recipient is no longer one of its recipients"


def already_sent(moved: PlannedMessage, taken: set[str], match: PendingMessage) -> bool:
    """True when a move would take the key of a message already planned or sent."""
    return moved.send_key != match.send_key and moved.send_key in taken
