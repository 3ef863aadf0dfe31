"""Intake: an event in, its subject updated and its messages planned, in one transaction.

An event is stored once per (tenant, idempotency key). A repeat of the key,
even from a request racing this one, gets the stored answer back and plans
nothing. Everything an event causes (the event, its subject's new state and
version, the rendered messages, their timelines, the answer) commits
together or not at all.

:meth:`Intake.accept_many` takes a batch in one transaction, with one round
trip per table (``POST /v1/events/batch``, imports, the benchmark);
:meth:`Intake.accept` takes one event, and shares a transaction with the
events other threads hand it meanwhile (:mod:`courrier.engine.group_commit`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from courrier import metrics
from courrier.clock import Clock, utcnow
from courrier.domain.events import check_envelope, check_payload, check_subject
from courrier.domain.kinds import DEFAULT_CATALOGUE, Catalogue
from courrier.domain.status import MessageStatus
from courrier.engine.composer import MessageComposer
from courrier.engine.digest import refresh_digests
from courrier.engine.group_commit import GroupCommit
from courrier.engine.intake_batch import (
    EventInput,
    FreshEvent,
    rehearsed_items,
    store_subjects_and_events,
)
from courrier.engine.planner import BatchPlanner
from courrier.engine.rehearsal import Rehearsal
from courrier.engine.wakeup import Wakeup, notify_due
from courrier.errors import CourrierError, ValidationError
from courrier.render.templates import TemplateRenderer
from courrier.store.db import read_only
from courrier.store.events import store_answers, stored_answers
from courrier.store.kinds import tenant_catalogue
from courrier.store.queue import process_prefix, sending_elsewhere
from courrier.store.tenants import Tenant

log = logging.getLogger(__name__)

#: how many times a batch is tried in all when it loses races to other transactions
ATTEMPTS = 3
#: PostgreSQL's deadlock_detected and serialization_failure: safe to try again
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
#: seconds between two looks (on SQLite) for a worker of another process sending
LOOK_AGAIN = 1.0
#: batches of at least this many events look every time (a look costs them next to nothing)
ALWAYS_LOOK_FROM = 20
#: renderers of tenants' edited templates kept warm between batches (the most recently used)
RENDERERS_KEPT = 16

Overrides = tuple[tuple[str, str], ...]  # a tenant's edited templates, by name

__all__ = ["EventInput", "Intake", "IntakeResult", "PlannedSummary"]


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
        preference_links: Callable[[int, int], str] | None = None,
    ) -> None:
        """``preference_links(tenant_id, contact_id)`` links a contact's preference page."""
        self.engine = engine
        self.renderer = renderer or TemplateRenderer()
        self.clock = clock
        self.wakeup = wakeup
        self.catalogue = catalogue
        self.preference_links = preference_links
        self._renderers: OrderedDict[Overrides, TemplateRenderer] = OrderedDict()
        self._renderers_lock = threading.Lock()
        self._lanes: dict[int, GroupCommit] = {}  # one per tenant: a tenant waits for its own
        self._lanes_lock = threading.Lock()
        self._elsewhere = (float("-inf"), False)  # (when looked, whether another process sends)

    def accept(self, tenant: Tenant, event: EventInput) -> IntakeResult:
        """Accept one event; the same idempotency key again gives the same answer, created=False.

        Events accepted from several threads at once share transactions
        (:mod:`courrier.engine.group_commit`); each gets its own answer.
        """
        with self._lanes_lock:
            lane = self._lanes.get(tenant.id)
            if lane is None:
                lane = self._lanes[tenant.id] = GroupCommit(self.accept_many)
        return lane.accept(tenant, event)

    def accept_many(self, tenant: Tenant, events: Sequence[EventInput]) -> list[IntakeResult]:
        """Accept a batch in one transaction; one answer per event, in order.

        A bad event refuses the whole batch (ValidationError naming the field;
        in a batch of several, the message starts with the event's position).
        """
        states = [self._checked(tenant, event, i, len(events)) for i, event in enumerate(events)]
        rehearsal = self._rehearse(tenant, events, states)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self.engine.begin() as conn:
                    results, due_now = self._accept_in(conn, tenant, events, states, rehearsal)
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
            subject_type = event.subject.get("type") if isinstance(event.subject, Mapping) else None
            for kind in self.catalogue.for_event(event.type):
                if isinstance(subject_type, str) and kind.subject_type != subject_type:
                    raise ValidationError(
                        f"{event.type} is about a {kind.subject_type}, not a {subject_type}",
                        "subject.type",
                    )
            state = check_subject(event.subject, default_timezone=tenant.timezone)
            check_payload(event.payload)
        except ValidationError as exc:
            exc.event = index
            if count > 1:
                exc.message = f"event {index}: {exc.message}"
                exc.args = (exc.message,)
            raise
        return state

    def _rehearse(
        self,
        tenant: Tenant,
        events: Sequence[EventInput],
        states: Sequence[dict[str, Any]],
    ) -> Rehearsal | None:
        """The batch planned and rendered on a read snapshot, before its transaction; or None.

        Only on SQLite, which lets one writer in at a time, and only while a
        worker of another process is sending: it will want the write lock
        to record and claim while this batch renders. The transaction then
        holds the lock only to write and to recompute what changed meanwhile
        (:mod:`courrier.engine.rehearsal`). Without such a worker (or beside
        this process's own dispatcher, which shares the interpreter anyway)
        a rehearsal would only add work. Intake looks for such a worker
        before every batch of :data:`ALWAYS_LOOK_FROM` events or more, and
        before smaller ones (``POST /v1/events``) at most every
        :data:`LOOK_AGAIN` seconds. Whatever goes wrong here (a
        missing contact, say) is left for the transaction to meet and report.
        """
        if self.engine.dialect.name != "sqlite":
            return None
        looked, elsewhere = self._elsewhere
        look = len(events) >= ALWAYS_LOOK_FROM or time.monotonic() - looked >= LOOK_AGAIN
        if not (elsewhere or look):
            return None
        now = self.clock()  # the transaction reads its own: texts do not depend on it
        try:
            with read_only(self.engine) as conn:
                if look:
                    self._elsewhere = (time.monotonic(), False)  # also if the look fails
                    elsewhere = sending_elsewhere(conn, process_prefix(), now)
                    self._elsewhere = (time.monotonic(), elsewhere)
                if not elsewhere:
                    return None
                answers = stored_answers(conn, tenant.id, (e.idempotency_key for e in events))
                batch = list(_fresh(events, states, answers).values())
                planner = self._planner(conn, tenant, now)
                composer = planner.composer
                composer.rehearsal = rehearsal = Rehearsal(composer.renderer)
                planner.rehearse(rehearsed_items(conn, tenant.id, batch))
                return rehearsal
        except Exception:  # the transaction does the same, and reports what fails
            log.debug("could not rehearse a batch of %d events", len(events), exc_info=True)
            return None

    def _accept_in(
        self,
        conn: Connection,
        tenant: Tenant,
        events: Sequence[EventInput],
        states: Sequence[dict[str, Any]],
        rehearsal: Rehearsal | None = None,
    ) -> tuple[list[IntakeResult], bool]:
        now = self.clock()  # once the write lock is held: received_at follows commit order
        answers = stored_answers(conn, tenant.id, (e.idempotency_key for e in events))
        fresh = _fresh(events, states, answers)
        batch = list(fresh.values())
        self._store_subjects_and_events(conn, tenant, batch, now)
        planner = self._planner(conn, tenant, now, rehearsal)
        planned = planner.run([f.plan_item for f in batch])
        if any(f.state["type"] == "booking" for f in batch):
            composer = planner.composer
            refresh_digests(
                conn,
                tenant,
                planner.catalogue,
                composer.renderer,
                now,
                link_for=composer.preference_link,
                directory=planner.directory,
            )
        summaries = [[_summary(p.id, p.row, p.contact) for p in group] for group in planned]
        new_answers = [
            (f.event_id, {"event_id": f.event_id, "messages": [s.as_json() for s in summaries[i]]})
            for i, f in enumerate(batch)
        ]
        store_answers(conn, new_answers)
        results = self._results(events, answers, fresh, summaries)
        due_now = any(s.status == MessageStatus.DUE for group in summaries for s in group)
        return results, due_now

    def _planner(
        self,
        conn: Connection,
        tenant: Tenant,
        now: datetime,
        rehearsal: Rehearsal | None = None,
    ) -> BatchPlanner:
        """A planner with the tenant's kinds in force and its edited templates (one query).

        Its composer takes from ``rehearsal`` what was rendered ahead from
        equal inputs (:mod:`courrier.engine.rehearsal`).
        """
        kinds = tenant_catalogue(conn, tenant.id, self.catalogue)
        renderer = self._renderer(kinds.template_overrides())
        composer = MessageComposer(
            renderer,
            tenant,
            conn=conn,
            preference_link=self.preference_links,
            rehearsal=rehearsal,
        )
        return BatchPlanner(conn, tenant, kinds.catalogue, composer, now)

    def _renderer(self, overrides: Mapping[str, str]) -> TemplateRenderer:
        """The renderer of these edited templates, kept by their text: its caches stay warm.

        An edit changes the text, so the next batch gets a renderer of its own.
        """
        if not overrides:
            return self.renderer
        key = tuple(sorted(overrides.items()))
        with self._renderers_lock:
            renderer = self._renderers.get(key)
            if renderer is not None:
                self._renderers.move_to_end(key)
                return renderer
        renderer = TemplateRenderer(overrides)
        with self._renderers_lock:
            self._renderers[key] = renderer
            while len(self._renderers) > RENDERERS_KEPT:
                self._renderers.popitem(last=False)
        return renderer

    def _store_subjects_and_events(
        self, conn: Connection, tenant: Tenant, batch: list[FreshEvent], now: datetime
    ) -> None:
        """Write each subject's latest state, the events, and one subject version per event.

        A method of its own so the benchmark can time it as a stage.
        """
        store_subjects_and_events(conn, tenant.id, batch, now)

    @staticmethod
    def _results(
        events: Sequence[EventInput],
        answers: Mapping[str, Mapping[str, Any]],
        fresh: Mapping[str, FreshEvent],
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


def _fresh(
    events: Sequence[EventInput],
    states: Sequence[dict[str, Any]],
    answers: Mapping[str, Any],
) -> dict[str, FreshEvent]:
    """The events whose key has no stored answer, by key, each key once (its first event)."""
    fresh: dict[str, FreshEvent] = {}
    for position, (event, state) in enumerate(zip(events, states, strict=True)):
        if event.idempotency_key not in answers:
            fresh.setdefault(event.idempotency_key, FreshEvent(event, state, position))
    return fresh


def _lost_race(exc: DBAPIError) -> bool:
    """True for a unique key taken by a concurrent transaction, or a broken deadlock."""
    return isinstance(exc, IntegrityError) or (
        getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES
    )


def _count(events: Sequence[EventInput], results: Sequence[IntakeResult]) -> None:
    """Metrics, once committed: events accepted (repeats not counted) and messages planned.

    Counted per label first: one increment per event type and channel, not per event.
    """
    accepted: Counter[str] = Counter()
    planned: Counter[str] = Counter()
    for event, result in zip(events, results, strict=True):
        if result.created:
            accepted[event.type] += 1
            planned.update(message.channel for message in result.messages)
    for event_type, count in accepted.items():
        metrics.events_accepted.labels(type=event_type).inc(count)
    for channel, count in planned.items():
        metrics.messages_planned.labels(channel=channel).inc(count)


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
