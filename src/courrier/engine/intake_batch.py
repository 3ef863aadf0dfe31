"""A batch's new events on their way through intake, and their subjects and events stored.

Intake keeps one :class:`FreshEvent` per idempotency key not seen before;
:func:`store_subjects_and_events` writes, for the whole batch at once, each
subject's latest state, the events and one subject version per event, then
hands the events back with their ids, versions and subjects for planning.
A subject's state is encoded to JSON once for the subject, its version and
the event (:class:`courrier.store.bulk.JSONText`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from courrier.engine.planner import PlanItem
from courrier.store.bulk import JSONText, json_object, json_text
from courrier.store.events import insert_events
from courrier.store.subjects import (
    StoredSubject,
    insert_subjects,
    record_versions,
    subjects_by_key,
    update_subjects,
)


@dataclass(frozen=True)
class EventInput:
    """An event as posted: ``subject`` has ``type`` and ``id`` plus its state."""

    type: str
    idempotency_key: str
    occurred_at: datetime
    subject: Mapping[str, Any]
    payload: Mapping[str, Any] = field(default_factory=dict)


NOT_YET = JSONText()
EMPTY_PAYLOAD = JSONText("{}")  # what json.dumps({}) writes: most events carry no payload


@dataclass
class FreshEvent:
    """An event seen for the first time, on its way through the batch."""

    input: EventInput
    state: dict[str, Any]
    position: int  # in the posted batch
    version: int = 0
    subject: StoredSubject | None = None
    event_id: int = 0
    existed: bool = False
    encoded: JSONText = NOT_YET  # the state as stored, once complete

    @property
    def subject_key(self) -> tuple[str, str]:
        return (self.state["type"], self.state["id"])

    @property
    def plan_item(self) -> PlanItem:
        assert self.subject is not None  # set by store_subjects_and_events
        return PlanItem(
            self.position,
            self.event_id,
            self.input.type,
            self.input.occurred_at,
            self.input.payload,
            self.subject.id,
            self.version,
            self.state,
            self.existed,
        )


def store_subjects_and_events(
    conn: Connection, tenant_id: int, batch: list[FreshEvent], now: datetime
) -> None:
    """Write each subject's latest state, the events, and one subject version per event."""
    stored = subjects_by_key(conn, tenant_id, (f.subject_key for f in batch))
    current: dict[tuple[str, str], StoredSubject] = dict(stored)
    for f in batch:
        f.existed = f.subject_key in stored
        subject = current[f.subject_key] = _next_version(f, f.state, current.get(f.subject_key))
        f.version = subject.version
        f.encoded = json_text(conn, f.state)
    latest = {f.subject_key: f.encoded for f in batch}  # the last event's state wins
    new = [s for key, s in current.items() if key not in stored]
    for subject, subject_id in zip(
        new, insert_subjects(conn, tenant_id, new, now=now, encoded=latest), strict=True
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
                "tenant_id": tenant_id,
                "type": f.input.type,
                "idempotency_key": f.input.idempotency_key,
                "subject_id": f.subject.id,
                "payload": json_object(
                    conn,
                    {
                        "subject": f.encoded,
                        "payload": dict(f.input.payload) if f.input.payload else EMPTY_PAYLOAD,
                    },
                ),
                "occurred_at": f.input.occurred_at,
                "received_at": now,
            }
        )
    for f, event_id in zip(batch, insert_events(conn, rows), strict=True):
        f.event_id = event_id
    record_versions(
        conn,
        [(f.subject.id, f.version, f.encoded, f.event_id) for f in batch if f.subject],
        now=now,
    )


def rehearsed_items(conn: Connection, tenant_id: int, batch: list[FreshEvent]) -> list[PlanItem]:
    """The plan items :func:`store_subjects_and_events` would hand on, on a snapshot, writing nothing.

    For rendering ahead of the transaction: the events have no ids yet, and
    subjects new to the database none either; the states are copies.
    """
    stored = subjects_by_key(conn, tenant_id, (f.subject_key for f in batch))
    current: dict[tuple[str, str], StoredSubject] = dict(stored)
    items = []
    for f in batch:
        subject = current[f.subject_key] = _next_version(
            f, dict(f.state), current.get(f.subject_key)
        )
        item = PlanItem(
            f.position,
            0,
            f.input.type,
            f.input.occurred_at,
            f.input.payload,
            subject.id,
            subject.version,
            subject.state,
            f.subject_key in stored,
        )
        items.append(item)
    return items


def _next_version(
    f: FreshEvent, state: dict[str, Any], before: StoredSubject | None
) -> StoredSubject:
    """The event's subject after it: the next version, in ``state`` (its creation time filled)."""
    if "created_at" not in state:
        state["created_at"] = (
            before.state.get("created_at") if before else None
        ) or f.input.occurred_at.isoformat()
    subject_type, external_id = f.subject_key
    return StoredSubject(
        before.id if before else 0,
        subject_type,
        external_id,
        before.version + 1 if before else 1,
        state,
    )
