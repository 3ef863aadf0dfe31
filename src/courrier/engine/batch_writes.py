"""A planning batch's writes, kept in memory until the planner writes them all at once.

The planner reconciles event after event; each may add, move or cancel a
message, including one that an earlier event of the same batch only added
in memory. :class:`BatchWrites` keeps that state (and which send keys are
taken) so the batch goes to the database in a few statements at the end
(:meth:`courrier.engine.planner.BatchPlanner.run`). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from courrier.domain.planning import EventFacts, PlannedMessage, planned_again
from courrier.store.planning import PendingMessage


def pending_row(message_id: int, subject_id: int, row: Mapping[str, Any]) -> PendingMessage:
    """A composed row as the pending message it will be (its id negative until written)."""
    return PendingMessage(
        message_id,
        subject_id,
        row["kind"],
        row["contact_id"],
        row["address"],
        row["channel"],
        row["send_key"],
        row["due_at"],
        row["status"],
    )


class BatchWrites:
    """The batch's inserts, moves and cancellations, kept in memory until one flush.

    ``live`` is each subject's pending messages as the batch has left them so
    far; a message added earlier in the batch (a negative id) is still only a
    row here, so a later event of the same subject moves or drops that row.
    """

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken
        self.live: dict[int, dict[int, PendingMessage]] = {}
        self.rows: dict[int, tuple[int, dict[str, Any], str | None]] = {}
        self.moves: dict[int, tuple[int, dict[str, Any], datetime, str | None]] = {}
        self.cancels: dict[int, str] = {}
        self.revivable: set[str] = set()  # keys of messages cancelled, never sent
        self._stored_keys: dict[int, str] = {}  # a moved row's key in the database

    def keyed(
        self, message: PlannedMessage, event: EventFacts, own: str | None = None
    ) -> PlannedMessage | None:
        """The message under a free key, or None when its key was already used for a send.

        A re-planned reminder whose key belongs to a cancelled message (moved
        away, then back) gets a key of its own for this version.
        """
        if message.send_key == own or message.send_key not in self.taken:
            return message
        if message.kind.replan and message.send_key in self.revivable:
            again = planned_again(message, event)
            return again if again.send_key not in self.taken else None
        return None

    def add(
        self, owner: int, subject_id: int, row: dict[str, Any], message: PlannedMessage
    ) -> None:
        temp = -(len(self.rows) + len(self.cancels) + 1)
        while temp in self.rows:
            temp -= 1
        self.rows[temp] = (owner, row, message.recipient.contact)
        self.live.setdefault(subject_id, {})[temp] = pending_row(temp, subject_id, row)
        self.taken.add(row["send_key"])

    def move(
        self, owner: int, match: PendingMessage, row: dict[str, Any], message: PlannedMessage
    ) -> None:
        self.taken.discard(match.send_key)
        self.taken.add(row["send_key"])
        self.live[match.subject_id][match.id] = pending_row(match.id, match.subject_id, row)
        contact = message.recipient.contact
        if match.id < 0:
            self.rows[match.id] = (owner, row, contact)
        else:
            was = self.moves[match.id][2] if match.id in self.moves else match.due_at
            self._stored_keys.setdefault(match.id, match.send_key)
            self.moves[match.id] = (owner, row, was, contact)

    def cancel(self, match: PendingMessage, reason: str) -> None:
        self.live.get(match.subject_id, {}).pop(match.id, None)
        if match.id < 0:  # never written: its key is free again
            self.taken.discard(match.send_key)
            self.rows.pop(match.id, None)
            return
        key = match.send_key
        if self.moves.pop(match.id, None) is not None:  # moved earlier: the row keeps its key
            self.taken.discard(key)
            key = self._stored_keys[match.id]
            self.taken.add(key)
        self.cancels[match.id] = reason
        self.revivable.add(key)
