"""A message's life as a state machine: its statuses and the allowed moves."""

from __future__ import annotations

from enum import StrEnum


class MessageStatus(StrEnum):
    """Where a message is in its life.

    planned → due → sending → sent → delivered → opened → clicked / accessed,
    or it ends cancelled, suppressed, failed or bounced.
    """

    PLANNED = "planned"  # waiting for its due time
    DUE = "due"  # due time reached (or a retry is waiting); claimable
    SENDING = "sending"  # claimed by a worker under a lease
    SENT = "sent"  # accepted by the server
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    ACCESSED = "accessed"
    CANCELLED = "cancelled"
    SUPPRESSED = "suppressed"
    FAILED = "failed"
    BOUNCED = "bounced"


S = MessageStatus

#: The one table of allowed moves. A status missing as a key is final.
ALLOWED_MOVES: dict[MessageStatus, frozenset[MessageStatus]] = {
    S.PLANNED: frozenset({S.DUE, S.SENDING, S.CANCELLED, S.SUPPRESSED, S.PLANNED}),
    S.DUE: frozenset({S.SENDING, S.CANCELLED, S.SUPPRESSED, S.PLANNED}),
    # sending → due: a transient failure waiting for its retry, or a release on shutdown
    # sending → sending: a worker takes over an expired lease
    S.SENDING: frozenset({S.SENT, S.DUE, S.FAILED, S.SENDING, S.SUPPRESSED, S.CANCELLED}),
    S.SENT: frozenset({S.DELIVERED, S.OPENED, S.CLICKED, S.ACCESSED, S.BOUNCED}),
    S.DELIVERED: frozenset({S.OPENED, S.CLICKED, S.ACCESSED, S.BOUNCED}),
    S.OPENED: frozenset({S.CLICKED, S.ACCESSED}),
    S.CLICKED: frozenset({S.ACCESSED}),
}

#: Statuses a worker may claim once their due time has come.
CLAIMABLE: frozenset[MessageStatus] = frozenset({S.PLANNED, S.DUE})

#: Moves only a person makes, through the API, never the engine: an ended
#: message sent again (back to due, as the same mail), a waiting one withdrawn.
STAFF_MOVES: dict[MessageStatus, frozenset[MessageStatus]] = {
    S.FAILED: frozenset({S.DUE}),
    S.BOUNCED: frozenset({S.DUE}),
    S.SUPPRESSED: frozenset({S.DUE}),
    S.PLANNED: frozenset({S.CANCELLED}),
    S.DUE: frozenset({S.CANCELLED}),
}

#: Statuses from which the engine never moves a message (staff may: :data:`STAFF_MOVES`).
FINAL: frozenset[MessageStatus] = frozenset(
    {S.CANCELLED, S.SUPPRESSED, S.FAILED, S.BOUNCED, S.ACCESSED}
)


def can_move(current: MessageStatus, new: MessageStatus) -> bool:
    """True when ``current → new`` is an allowed move."""
    return new in ALLOWED_MOVES.get(current, frozenset())
