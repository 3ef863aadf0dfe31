"""Planning a batch of accepted events: recipients resolved, messages planned, moved, cancelled.

Intake stores the events and subjects, then hands them here, in the same
transaction. For each event, in order: the tenant's kinds planned on it
(triggered, or re-planned from the subject's new state), their recipients
resolved (subject fields, the event's payload, staff by profile, bookings
on a resource), and the result reconciled with the subject's pending
messages (:mod:`courrier.engine.replan`). Writes are kept in memory
(:mod:`courrier.engine.batch_writes`) and go out in a few statements per
batch, whatever its size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy.engine import Connection

from courrier.domain.kinds import Catalogue, NotificationKind
from courrier.domain.planning import EventFacts, PlannedMessage, Recipient, plan
from courrier.domain.recipients import EMPTY_DIRECTORY, Directory, needs_directory, recipients_of
from courrier.domain.timing import parse_aware
from courrier.engine.batch_writes import BatchWrites
from courrier.engine.composer import MessageComposer, Occasion
from courrier.engine.replan import reconcile
from courrier.errors import ValidationError
from courrier.store.contacts import recipients_by_external_id
from courrier.store.directory import bookers_on_resource, staff_directory
from courrier.store.planning import (
    UNAVAILABLE,
    cancel_messages,
    cancelled_send_keys,
    existing_send_keys,
    insert_messages,
    move_messages,
    pending_messages,
)
from courrier.store.preferences import suppress_switched_off
from courrier.store.tenants import Tenant

#: channels Courrier can send on today; a kind's other channels (push, SMS) are noted, not planned
SENDING_CHANNELS = ("email",)


@dataclass(frozen=True)
class PlanItem:
    """One stored event, with its subject as it now stands."""

    position: int  # in the posted batch
    event_id: int
    type: str
    occurred_at: datetime
    payload: Mapping[str, Any]
    subject_id: int
    version: int
    state: Mapping[str, Any]
    existed: bool  # the subject was known before this batch

    @cached_property
    def facts(self) -> EventFacts:
        """Read a few times per message: made (and its dates parsed) once."""
        return EventFacts(
            self.type,
            self.occurred_at,
            self.state["type"],
            self.state["id"],
            self.version,
            self.payload,
            parse_aware(self.state.get("created_at")),
        )

    @cached_property
    def occasion(self) -> Occasion:
        return Occasion(
            self.event_id,
            self.type,
            self.occurred_at,
            self.subject_id,
            self.version,
            self.state,
            payload=self.payload,
        )


@dataclass(frozen=True)
class Planned:
    """A message an event planned (or moved), as its answer shows it."""

    id: int
    row: Mapping[str, Any]
    contact: str | None


class BatchPlanner:
    """Plans one batch of one tenant's events inside intake's transaction."""

    def __init__(
        self,
        conn: Connection,
        tenant: Tenant,
        catalogue: Catalogue,
        composer: MessageComposer,
        now: datetime,
    ) -> None:
        self.conn = conn
        self.tenant = tenant
        self.catalogue = catalogue
        self.composer = composer
        self.now = now
        # per (event type, subject type): the batch's events are mostly of one or two types
        self._kinds: dict[tuple[str, str], tuple[NotificationKind, ...]] = {}
        self._roles: dict[tuple[str, str], list[str]] = {}
        #: the tenant's staff, once a batch's roles needed them (read in this transaction)
        self.directory: Directory | None = None

    def kinds_for(self, item: PlanItem) -> tuple[NotificationKind, ...]:
        key = (item.type, item.state["type"])
        kinds = self._kinds.get(key)
        if kinds is None:
            kinds = self._kinds[key] = self.catalogue.for_subject_event(*key)
        return kinds

    def roles_for(self, item: PlanItem) -> list[str]:
        """The roles the item's kinds send to or leave out, each once, in order."""
        key = (item.type, item.state["type"])
        roles = self._roles.get(key)
        if roles is None:
            kinds = self.kinds_for(item)
            roles = list(dict.fromkeys(r for k in kinds for r in (*k.recipients, *k.exclude)))
            self._roles[key] = roles
        return roles

    def run(self, items: Sequence[PlanItem]) -> list[list[Planned]]:
        """Plan, move and cancel the batch's messages; what each event planned, in order."""
        resolved = self._resolve(items)
        planned = [
            self._plan(item, ids, resolved.contacts)
            for item, ids in zip(items, resolved.per_item, strict=True)
        ]
        return self._write(items, planned, resolved.contact_ids)

    def rehearse(self, items: Sequence[PlanItem]) -> None:
        """Compose what :meth:`run` would plan anew for ``items``, writing nothing.

        The composer's :class:`~courrier.engine.rehearsal.Rehearsal` keeps
        what it renders, for the transaction's composer to find again.
        Moves and cancellations are left to the transaction.
        """
        resolved = self._resolve(items)
        contact_ids = resolved.contact_ids
        for item, ids in zip(items, resolved.per_item, strict=True):
            for message in self._plan(item, ids, resolved.contacts):
                self._compose(item, message, contact_ids)

    # -- recipients --------------------------------------------------------

    def _resolve(self, items: Sequence[PlanItem]) -> _Resolved:
        roles = {r for item in items for r in self.roles_for(item)}
        directory = EMPTY_DIRECTORY
        if needs_directory(roles):
            directory = self.directory = staff_directory(self.conn, self.tenant.id)
        per_item: list[dict[str, list[str]]] = []
        wanted: set[str] = set()
        for item in items:
            by_role = self._roles_of(item, directory)
            per_item.append(by_role)
            wanted.update(c for ids in by_role.values() for c in ids)
            if item.state["type"] == "booking":
                wanted.add(item.state["booker"])
        contacts = recipients_by_external_id(self.conn, self.tenant.id, wanted)
        for item in items:
            if item.state["type"] == "booking" and item.state["booker"] not in contacts:
                where = f"event {item.position}: " if len(items) > 1 else ""
                raise ValidationError(
                    f"{where}no contact {item.state['booker']!r}: create it first"
                    " (PUT /v1/contacts/{id})",
                    "subject.booker",
                    event=item.position,
                )
        return _Resolved(per_item, contacts)

    def _roles_of(self, item: PlanItem, directory: Directory) -> dict[str, list[str]]:
        roles = self.roles_for(item)
        if "resource_bookers" in roles:
            directory = self._with_bookers(item, directory)
        return recipients_of(roles, (), item.state, item.payload, directory)

    def _with_bookers(self, item: PlanItem, directory: Directory) -> Directory:
        window = item.state.get("maintenance") or {}
        bookers = bookers_on_resource(
            self.conn,
            self.tenant.id,
            str(item.state["id"]),
            parse_aware(window.get("start")) if isinstance(window, Mapping) else None,
            parse_aware(window.get("end")) if isinstance(window, Mapping) else None,
        )
        return Directory(directory.staff_by_profile, directory.booking_copy, bookers)

    def _plan(
        self,
        item: PlanItem,
        ids: Mapping[str, list[str]],
        contacts: Mapping[str, tuple[int, Recipient]],
    ) -> list[PlannedMessage]:
        by_role = {
            role: [contacts[c][1] for c in found if c in contacts] for role, found in ids.items()
        }
        planned = plan(self.kinds_for(item), item.facts, item.state, by_role, self.now)
        return [m for m in planned if m.channel in SENDING_CHANNELS]

    # -- writes ------------------------------------------------------------

    def _write(
        self,
        items: Sequence[PlanItem],
        planned: list[list[PlannedMessage]],
        contact_ids: Mapping[str, int],
    ) -> list[list[Planned]]:
        # A send key starts with its subject's type and id, and a subject new to the database
        # has no message yet: only the keys of known subjects are looked for. (A batch that
        # creates its bookings, most of them, asks nothing; repeats within the batch are
        # BatchWrites' to find.)
        known_keys = (
            m.send_key for item, ms in zip(items, planned, strict=True) if item.existed for m in ms
        )
        taken = existing_send_keys(self.conn, self.tenant.id, known_keys)
        known = [item.subject_id for item in items if item.existed]
        batch = BatchWrites(taken)
        if taken:
            batch.revivable = cancelled_send_keys(self.conn, self.tenant.id, taken)
        if known:
            for subject_id, found in pending_messages(self.conn, self.tenant.id, known).items():
                batch.live[subject_id] = {m.id: m for m in found}
        for index, (item, messages) in enumerate(zip(items, planned, strict=True)):
            live = batch.live.setdefault(item.subject_id, {})
            result = reconcile(
                self.catalogue,
                item.facts,
                item.state,
                list(live.values()),
                messages,
                contact_ids,
                self.now,
            )
            for stale, reason in result.cancelled:
                batch.cancel(stale, reason)
            for match, wanted in result.moved:
                message = batch.keyed(wanted, item.facts, match.send_key)
                if message is None:
                    batch.cancel(match, "already sent for this time")
                else:
                    batch.move(index, match, self._compose(item, message, contact_ids), message)
            for wanted in result.new:
                message = batch.keyed(wanted, item.facts)
                if message is not None:
                    row = self._compose(item, message, contact_ids)
                    batch.add(index, item.subject_id, row, message)
        new_rows = [row for _, row, _ in batch.rows.values()]
        kinds = {kind.name: kind for kind in self.catalogue}
        suppress_switched_off(self.conn, self.tenant.id, new_rows, kinds)  # kept, with the reason
        return _flush(batch, self.conn, len(items), self.now)

    def _compose(
        self, item: PlanItem, message: PlannedMessage, contact_ids: Mapping[str, int]
    ) -> dict[str, Any]:
        contact = message.recipient.contact
        contact_id = contact_ids.get(contact) if contact is not None else None
        row = self.composer.compose(message, item.occasion, contact_id, self.now)
        unavailable = [c for c in message.kind.channels if c not in SENDING_CHANNELS]
        if unavailable:  # said in the message's first timeline entry
            row[UNAVAILABLE] = unavailable
        return row


@dataclass
class _Resolved:
    per_item: list[dict[str, list[str]]]
    contacts: dict[str, tuple[int, Recipient]]  # external id -> (row id, recipient)

    @property
    def contact_ids(self) -> dict[str, int]:
        return {external: c[0] for external, c in self.contacts.items()}


def _flush(batch: BatchWrites, conn: Connection, count: int, now: datetime) -> list[list[Planned]]:
    """Write the batch: cancellations, moves, then new messages; what each event planned."""
    cancel_messages(conn, sorted(batch.cancels.items()), now=now)
    move_messages(conn, [(i, row, was) for i, (_, row, was, _) in batch.moves.items()], now=now)
    inserted = [batch.rows[temp] for temp in sorted(batch.rows, reverse=True)]
    answers: list[list[Planned]] = [[] for _ in range(count)]
    ids = insert_messages(conn, [row for _, row, _ in inserted])
    for (owner, row, contact), message_id in zip(inserted, ids, strict=True):
        answers[owner].append(Planned(message_id, row, contact))
    for message_id, (owner, row, was, contact) in sorted(batch.moves.items()):
        if row["due_at"] != was:  # moved: the answer shows it with its new time
            answers[owner].append(Planned(message_id, row, contact))
    return answers
