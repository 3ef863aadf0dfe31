"""Intake: an event in, its subject updated and its messages planned, in one transaction.

An event is stored once per (tenant, idempotency key). A repeat of the key,
even from a request racing this one, gets the stored answer back and plans
nothing. Everything an event causes (the event, its subject's new state and
version, the rendered messages, their timelines, the answer) commits
together or not at all.

:meth:`Intake.accept_many` takes a batch in one transaction, with one round
trip per table, for imports and the benchmark; :meth:`Intake.accept` is a
batch of one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from courrier import metrics
from courrier.clock import Clock, utcnow
from courrier.domain.events import check_envelope, check_subject
from courrier.domain.kinds import DEFAULT_CATALOGUE, Catalogue
from courrier.domain.planning import EventFacts, PlannedMessage, Recipient, plan, recipient_ids
from courrier.domain.status import MessageStatus
from courrier.engine.composer import MessageComposer, Occasion
from courrier.engine.wakeup import Wakeup, notify_due
from courrier.errors import CourrierError, ValidationError
from courrier.render.templates import TemplateRenderer
from courrier.store.contacts import contacts_by_external_id
from courrier.store.events import insert_events, store_answers, stored_answers
from courrier.store.planning import existing_send_keys, insert_messages
from courrier.store.subjects import (
    StoredSubject,
    insert_subjects,
    record_versions,
    subjects_by_key,
    update_subjects,
)
from courrier.store.tenants import Tenant

#: how many times a batch is tried in all when it loses races to other transactions
ATTEMPTS = 3
#: PostgreSQL's deadlock_detected and serialization_failure: safe to try again
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


@dataclass(frozen=True)
class EventInput:
    """An event as posted: ``subject`` has ``type`` and ``id`` plus its state."""

    type: str
    idempotency_key: str
    occurred_at: datetime
    subject: Mapping[str, Any]


@dataclass(frozen=True)
class PlannedSummary:
    """One planned message, as the answer to the integrator shows it."""

    id: int
    kind: str
    channel: str
    address: str
    contact: str | None
    status: str
    due_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "due_at": self.due_at.isoformat()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlannedSummary:
        return cls(**{**data, "due_at": datetime.fromisoformat(data["due_at"])})


@dataclass(frozen=True)
class IntakeResult:
    """The answer: the event's id, whether it is new, and the messages it planned."""

    event_id: int
    created: bool
    messages: list[PlannedSummary]

    @classmethod
    def replayed(cls, answer: Mapping[str, Any]) -> IntakeResult:
        """The answer stored for an idempotency key, given again."""
        planned = [PlannedSummary.from_json(m) for m in answer.get("messages", ())]
        return cls(event_id=int(answer["event_id"]), created=False, messages=planned)


@dataclass
class _Fresh:
    """An event seen for the first time, on its way through the batch."""

    input: EventInput
    state: dict[str, Any]
    position: int  # in the posted batch
    version: int = 0
    subject: StoredSubject | None = None
    event_id: int = 0

    @property
    def subject_key(self) -> tuple[str, str]:
        return (self.state["type"], self.state["id"])


class Intake:
    """Turns posted events into stored events, subject versions and planned messages."""

    def __init__(
        self,
        engine: Engine,
        *,
        renderer: TemplateRenderer | None = None,
        clock: Clock = utcnow,
        wakeup: Wakeup | None = None,
        catalogue: Catalogue = DEFAULT_CATALOGUE,
    ) -> None:
        self.engine = engine
        self.renderer = renderer or TemplateRenderer()
        self.clock = clock
        self.wakeup = wakeup
        self.catalogue = catalogue

    def accept(self, tenant: Tenant, event: EventInput) -> IntakeResult:
        """Accept one event; the same idempotency key again gives the same answer, created=False."""
        return self.accept_many(tenant, [event])[0]

    def accept_many(self, tenant: Tenant, events: Sequence[EventInput]) -> list[IntakeResult]:
        """Accept a batch in one transaction; one answer per event, in order.

        A bad event refuses the whole batch (ValidationError naming the field;
        in a batch of several, the message starts with the event's position).
        """
        states = [self._checked(tenant, event, i, len(events)) for i, event in enumerate(events)]
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self.engine.begin() as conn:
                    results, due_now = self._accept_in(conn, tenant, events, states)
                    if due_now:
                        notify_due(conn)
            except DBAPIError as exc:
                # Another transaction stored one of our unique keys first (or
                # PostgreSQL broke a deadlock): the next try sees its rows.
                if not _lost_race(exc):
                    raise
                if attempt == ATTEMPTS:
                    raise CourrierError(f"intake kept losing races: {exc.orig}") from exc
                continue
            if due_now and self.wakeup is not None:
                self.wakeup.poke()
            _count(events, results)
            return results
        raise AssertionError("unreachable")  # pragma: no cover

    def _checked(self, tenant: Tenant, event: EventInput, index: int, count: int) -> dict[str, Any]:
        try:
            check_envelope(event.type, event.idempotency_key, event.occurred_at)
            state = check_subject(event.subject, default_timezone=tenant.timezone)
            for kind in self.catalogue.for_event(event.type):
                if kind.subject_type != state["type"]:
                    raise ValidationError(
                        f"{event.type} is about a {kind.subject_type}, not a {state['type']}",
                        "subject.type",
                    )
        except ValidationError as exc:
            if count > 1:
                exc.message = f"event {index}: {exc.message}"
                exc.args = (exc.message,)
            raise
        return state

    def _accept_in(
        self,
        conn: Connection,
        tenant: Tenant,
        events: Sequence[EventInput],
        states: Sequence[dict[str, Any]],
    ) -> tuple[list[IntakeResult], bool]:
        now = self.clock()
        answers = stored_answers(conn, tenant.id, (e.idempotency_key for e in events))
        fresh: dict[str, _Fresh] = {}
        for position, (event, state) in enumerate(zip(events, states, strict=True)):
            if event.idempotency_key not in answers:
                fresh.setdefault(event.idempotency_key, _Fresh(event, state, position))
        batch = list(fresh.values())
        self._store_subjects_and_events(conn, tenant, batch, now)
        planned, contact_ids = self._plan(conn, tenant, batch, now)
        summaries = self._store_messages(conn, tenant, batch, planned, contact_ids, now)
        new_answers = [
            (f.event_id, {"event_id": f.event_id, "messages": [s.as_json() for s in summaries[i]]})
            for i, f in enumerate(batch)
        ]
        store_answers(conn, new_answers)
        results = self._results(events, answers, fresh, summaries)
        due_now = any(s.status == MessageStatus.DUE for group in summaries for s in group)
        return results, due_now

    def _store_subjects_and_events(
        self, conn: Connection, tenant: Tenant, batch: list[_Fresh], now: datetime
    ) -> None:
        """Write each subject's latest state, the events, and one subject version per event."""
        stored = subjects_by_key(conn, tenant.id, (f.subject_key for f in batch))
        current: dict[tuple[str, str], StoredSubject] = dict(stored)
        for f in batch:
            before = current.get(f.subject_key)
            f.version = before.version + 1 if before else 1
            current[f.subject_key] = StoredSubject(
                before.id if before else 0, f.subject_key[0], f.subject_key[1], f.version, f.state
            )
        new = [s for key, s in current.items() if key not in stored]
        for subject, subject_id in zip(
            new, insert_subjects(conn, tenant.id, new, now=now), strict=True
        ):
            current[(subject.type, subject.external_id)] = StoredSubject(
                subject_id, subject.type, subject.external_id, subject.version, subject.state
            )
        update_subjects(conn, [s for key, s in current.items() if key in stored], now=now)
        rows = []
        for f in batch:
            f.subject = current[f.subject_key]
            rows.append(
                {
                    "tenant_id": tenant.id,
                    "type": f.input.type,
                    "idempotency_key": f.input.idempotency_key,
                    "subject_id": f.subject.id,
                    "payload": {"subject": f.state},
                    "occurred_at": f.input.occurred_at,
                    "received_at": now,
                }
            )
        for f, event_id in zip(batch, insert_events(conn, rows), strict=True):
            f.event_id = event_id
        record_versions(
            conn,
            [(f.subject.id, f.version, f.state, f.event_id) for f in batch if f.subject],
            now=now,
        )

    def _plan(
        self, conn: Connection, tenant: Tenant, batch: list[_Fresh], now: datetime
    ) -> tuple[list[list[PlannedMessage]], dict[str, int]]:
        """The messages each event calls for, and the row ids of the contacts they go to."""
        wanted: set[str] = set()
        for f in batch:
            if f.state["type"] == "booking":
                wanted.add(f.state["booker"])
            for kind in self.catalogue.for_event(f.input.type):
                for role in kind.recipients:
                    wanted.update(recipient_ids(role, f.state))
        contacts = contacts_by_external_id(conn, tenant.id, wanted)
        planned: list[list[PlannedMessage]] = []
        for f in batch:
            if f.state["type"] == "booking" and f.state["booker"] not in contacts:
                where = f"event {f.position}: " if len(batch) > 1 else ""
                raise ValidationError(
                    f"{where}no contact {f.state['booker']!r}: create it first"
                    " (PUT /v1/contacts/{id})",
                    "subject.booker",
                )
            kinds = self.catalogue.for_event(f.input.type)
            by_role = {
                role: [
                    _recipient(contacts[c]) for c in recipient_ids(role, f.state) if c in contacts
                ]
                for kind in kinds
                for role in kind.recipients
            }
            facts = EventFacts(
                f.input.type, f.input.occurred_at, f.state["type"], f.state["id"], f.version
            )
            planned.append(plan(kinds, facts, f.state, by_role, now))
        return planned, {external: c["id"] for external, c in contacts.items()}

    def _store_messages(
        self,
        conn: Connection,
        tenant: Tenant,
        batch: list[_Fresh],
        planned: list[list[PlannedMessage]],
        contact_ids: Mapping[str, int],
        now: datetime,
    ) -> list[list[PlannedSummary]]:
        """Render and insert the messages not planned before; their summaries, per event."""
        taken = existing_send_keys(conn, tenant.id, (m.send_key for ms in planned for m in ms))
        composer = MessageComposer(self.renderer, tenant)
        rows: list[dict[str, Any]] = []
        owners: list[tuple[int, str | None]] = []
        for index, (f, messages) in enumerate(zip(batch, planned, strict=True)):
            assert f.subject is not None  # set by _store_subjects_and_events
            occasion = Occasion(
                f.event_id, f.input.type, f.input.occurred_at, f.subject.id, f.version, f.state
            )
            for message in messages:
                if message.send_key in taken:
                    continue
                taken.add(message.send_key)
                contact = message.recipient.contact
                contact_id = contact_ids.get(contact) if contact is not None else None
                rows.append(composer.compose(message, occasion, contact_id, now))
                owners.append((index, contact))
        summaries: list[list[PlannedSummary]] = [[] for _ in batch]
        for row, (owner, contact), message_id in zip(
            rows, owners, insert_messages(conn, rows), strict=True
        ):
            summaries[owner].append(_summary(message_id, row, contact))
        return summaries

    @staticmethod
    def _results(
        events: Sequence[EventInput],
        answers: Mapping[str, Mapping[str, Any]],
        fresh: Mapping[str, _Fresh],
        summaries: list[list[PlannedSummary]],
    ) -> list[IntakeResult]:
        """One answer per event, in order; a repeat (stored, or earlier in the batch) replays."""
        new = {
            key: IntakeResult(f.event_id, True, summaries[i])
            for i, (key, f) in enumerate(fresh.items())
        }
        results: list[IntakeResult] = []
        given: set[str] = set()
        for event in events:
            key = event.idempotency_key
            if key in answers:
                results.append(IntakeResult.replayed(answers[key]))
            elif key in given:
                results.append(IntakeResult(new[key].event_id, False, new[key].messages))
            else:
                given.add(key)
                results.append(new[key])
        return results


def _lost_race(exc: DBAPIError) -> bool:
    """True for a unique key taken by a concurrent transaction, or a broken deadlock."""
    return isinstance(exc, IntegrityError) or (
        getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES
    )


def _count(events: Sequence[EventInput], results: Sequence[IntakeResult]) -> None:
    """Metrics, once committed: events accepted (repeats not counted) and messages planned."""
    for event, result in zip(events, results, strict=True):
        if result.created:
            metrics.events_accepted.labels(type=event.type).inc()
            for message in result.messages:
                metrics.messages_planned.labels(channel=message.channel).inc()


def _recipient(contact: Mapping[str, Any]) -> Recipient:
    return Recipient(
        contact=contact["external_id"],
        name=contact["name"],
        email=contact["email"],
        phone=contact["phone"],
        locale=contact["locale"],
        timezone=contact["timezone"],
    )


def _summary(message_id: int, row: Mapping[str, Any], contact: str | None) -> PlannedSummary:
    return PlannedSummary(
        id=message_id,
        kind=row["kind"],
        channel=row["channel"],
        address=row["address"],
        contact=contact,
        status=row["status"],
        due_at=row["due_at"],
    )
