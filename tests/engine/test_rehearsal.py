"""Intake on SQLite beside a worker of another process: a batch renders before its transaction.

SQLite lets one writer in at a time. These tests check what a worker
would see (the write lock free while intake renders) and what the
integrator gets (the same mails, with whatever changed meanwhile).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.domain.default_kinds import BOOKING_CONFIRMATION
from courrier.domain.kinds import DEFAULT_CATALOGUE, Catalogue
from courrier.engine.intake import EventInput, Intake
from courrier.errors import ValidationError
from courrier.render.templates import RenderedMessage, TemplateRenderer
from courrier.store import schema
from courrier.store.contacts import ContactData, upsert_contact
from courrier.store.db import create_db_engine
from courrier.store.kinds import save_tenant_kind
from courrier.store.migrate import migrate
from courrier.store.queue import process_prefix
from courrier.store.tenants import Tenant, create_tenant
from tests.support import factories

pytestmark = pytest.mark.sqlite_only

#: a worker of another process
ELSEWHERE = "other-host:4242:abcdef"
MEMBERS = {"m-1": "Ada Lovelace", "m-2": "Louis Bernard", "m-3": "Grace Hopper"}


class WatchedRenderer(TemplateRenderer):
    """Renders as usual, noting each time whether another connection could have written."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.lock_was_free: list[bool] = []

    def render(self, kind: str, locale: str, context: Mapping[str, Any]) -> RenderedMessage:
        self.lock_was_free.append(write_lock_free(self.path))
        return super().render(kind, locale, context)


def write_lock_free(path: str) -> bool:
    """True when a connection of another process could start writing now."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


@pytest.fixture
def tenant(engine: Engine, clock: ManualClock) -> Tenant:
    with engine.begin() as conn:
        tenant = create_tenant(
            conn,
            "Aéroclub du Lac",
            from_email="bookings@club.test",
            reply_to="office@club.test",
            timezone="Europe/Paris",
            now=clock(),
        )
        for member, name in MEMBERS.items():
            data = ContactData(name=name, email=f"{member}@example.test", locale="en")
            upsert_contact(conn, tenant.id, member, data, now=clock())
    return tenant


@pytest.fixture
def renderer(engine: Engine) -> WatchedRenderer:
    assert engine.url.database
    return WatchedRenderer(engine.url.database)


@pytest.fixture
def intake(engine: Engine, clock: ManualClock, renderer: WatchedRenderer) -> Intake:
    catalogue = Catalogue([BOOKING_CONFIRMATION])
    return Intake(engine, clock=clock, renderer=renderer, catalogue=catalogue)


def worker_sending(engine: Engine, tenant: Tenant, clock: ManualClock, owner: str) -> None:
    """A message leased until a minute from now by the worker ``owner``."""
    with engine.begin() as conn:
        factories.insert_message(
            conn,
            factories.message_row(
                tenant.id,
                0,
                now=clock(),
                status="sending",
                lease_owner=owner,
                lease_until=clock() + timedelta(minutes=1),
            ),
        )


def booking(number: int, member: str) -> EventInput:
    return EventInput(
        type="booking.created",
        idempotency_key=f"k-{number}",
        occurred_at=ManualClock()(),
        subject={
            "type": "booking",
            "id": f"B-{number}",
            "start": "2026-03-28T10:00:00+01:00",
            "end": "2026-03-28T12:00:00+01:00",
            "timezone": "Europe/Paris",
            "booker": member,
            "resource": {"id": "F-GABC", "name": "Robin DR400"},
            "status": "confirmed",
        },
    )


def batch() -> list[EventInput]:
    return [booking(n, member) for n, member in enumerate(MEMBERS, start=1)]


def mails(engine: Engine) -> dict[str, dict[str, Any]]:
    return {row["address"]: row for row in factories.all_messages(engine) if row["event_id"]}


def attendee_name(mail: Mapping[str, Any]) -> str:
    (attachment,) = mail["attachments"]
    calendar = icalendar.Calendar.from_ical(attachment["content"])
    (event,) = calendar.walk("VEVENT")
    return str(event["ATTENDEE"].params["CN"])


def rehearse_then(intake: Intake, monkeypatch: pytest.MonkeyPatch, meanwhile: Any) -> None:
    """Make ``meanwhile()`` happen between the batch's rehearsal and its transaction."""
    rehearse = intake._rehearse

    def rehearse_first(*args: Any) -> Any:
        rehearsal = rehearse(*args)
        assert rehearsal is not None
        meanwhile()
        return rehearsal

    monkeypatch.setattr(intake, "_rehearse", rehearse_first)


def test_beside_a_worker_of_another_process_the_lock_is_free_while_a_batch_renders(
    engine: Engine, intake: Intake, tenant: Tenant, clock: ManualClock, renderer: WatchedRenderer
) -> None:
    worker_sending(engine, tenant, clock, owner=ELSEWHERE)
    results = intake.accept_many(tenant, batch())
    assert renderer.lock_was_free == [True] * len(MEMBERS), "each mail rendered once, unlocked"
    stored = mails(engine)
    assert sorted(stored) == sorted(f"{m}@example.test" for m in MEMBERS)
    assert [m.id for r in results for m in r.messages] == sorted(r["id"] for r in stored.values())
    for member, name in MEMBERS.items():
        mail = stored[f"{member}@example.test"]
        assert (mail["to_name"], mail["status"]) == (name, "due")
        assert name.split()[0] in mail["body_text"] and name.split()[0] in mail["body_html"]
        assert mail["subject_line"].startswith("Booking confirmed")
        assert attendee_name(mail) == name


def test_without_a_worker_elsewhere_a_batch_is_planned_once_in_its_transaction(
    engine: Engine, intake: Intake, tenant: Tenant, clock: ManualClock, renderer: WatchedRenderer
) -> None:
    worker_sending(engine, tenant, clock, owner=f"{process_prefix()}abcdef")  # this process's
    intake.accept_many(tenant, batch())
    assert renderer.lock_was_free == [False] * len(MEMBERS), "no rendering twice for nothing"
    assert len(mails(engine)) == len(MEMBERS)


def test_a_contact_renamed_after_the_rehearsal_gets_the_new_name(
    engine: Engine,
    intake: Intake,
    tenant: Tenant,
    clock: ManualClock,
    renderer: WatchedRenderer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker_sending(engine, tenant, clock, owner=ELSEWHERE)

    def rename() -> None:  # another request commits between the two
        with engine.begin() as conn:
            conn.execute(
                update(schema.contacts)
                .where(schema.contacts.c.external_id == "m-2")
                .values(name="Louise Bernard")
            )

    rehearse_then(intake, monkeypatch, rename)
    intake.accept_many(tenant, batch())
    assert len(renderer.lock_was_free) == len(MEMBERS) + 1, "only the renamed one again"
    assert renderer.lock_was_free[-1] is False
    louise = mails(engine)["m-2@example.test"]
    assert louise["to_name"] == "Louise Bernard"
    assert "Louise" in louise["body_text"] and "Louise" in louise["body_html"]
    assert attendee_name(louise) == "Louise Bernard"
    assert attendee_name(mails(engine)["m-1@example.test"]) == "Ada Lovelace"


def test_a_missing_booker_is_still_refused_by_the_transaction(
    engine: Engine, intake: Intake, tenant: Tenant, clock: ManualClock
) -> None:
    worker_sending(engine, tenant, clock, owner=ELSEWHERE)
    events = [*batch(), booking(9, "m-404")]
    with pytest.raises(ValidationError) as refused:
        intake.accept_many(tenant, events)
    assert refused.value.field == "subject.booker"
    assert refused.value.event == len(MEMBERS)
    assert mails(engine) == {}, "nothing of the batch written"


def test_a_worker_that_starts_sending_elsewhere_is_noticed_at_the_next_look(
    engine: Engine,
    intake: Intake,
    tenant: Tenant,
    clock: ManualClock,
    renderer: WatchedRenderer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("courrier.engine.intake.LOOK_AGAIN", 60.0)
    intake.accept_many(tenant, [booking(1, "m-1")])
    worker_sending(engine, tenant, clock, owner=ELSEWHERE)
    intake.accept_many(tenant, [booking(2, "m-2")])
    assert renderer.lock_was_free == [False, False], "looked a moment ago: no worker then"
    monkeypatch.setattr("courrier.engine.intake.LOOK_AGAIN", 0.0)
    intake.accept_many(tenant, [booking(3, "m-3")])
    assert renderer.lock_was_free == [False, False, True]


def test_a_template_edited_after_the_rehearsal_is_the_one_used(
    engine: Engine,
    intake: Intake,
    tenant: Tenant,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker_sending(engine, tenant, clock, owner=ELSEWHERE)

    def edit() -> None:
        with engine.begin() as conn:
            save_tenant_kind(
                conn,
                tenant.id,
                "booking.confirmation",
                enabled=True,
                custom=False,
                definition={},
                templates={"en": {"subject": "Edited: {{ subject.id }}"}},
                now=clock(),
            )

    rehearse_then(intake, monkeypatch, edit)
    intake.accept_many(tenant, batch())
    lines = sorted(mail["subject_line"] for mail in mails(engine).values())
    assert lines == ["Edited: B-1", "Edited: B-2", "Edited: B-3"]


def test_a_version_committed_after_the_rehearsal_is_the_one_compared_with(
    engine: Engine,
    tenant: Tenant,
    clock: ManualClock,
    renderer: WatchedRenderer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    modified = next(k for k in DEFAULT_CATALOGUE if k.name == "booking.modified")
    catalogue = Catalogue([BOOKING_CONFIRMATION, modified])
    intake = Intake(engine, clock=clock, renderer=renderer, catalogue=catalogue)
    intake.accept_many(tenant, [booking(1, "m-1")])  # 10:00 to 12:00
    worker_sending(engine, tenant, clock, owner=ELSEWHERE)
    monkeypatch.setattr("courrier.engine.intake.LOOK_AGAIN", 0.0)
    moved_to_11 = moved(booking(1, "m-1"), "k-11", "2026-03-28T11:00:00+01:00")
    moved_to_9 = moved(booking(1, "m-1"), "k-9", "2026-03-28T09:00:00+01:00")

    def another_request() -> None:
        Intake(engine, clock=clock, catalogue=catalogue).accept_many(tenant, [moved_to_9])

    rehearse_then(intake, monkeypatch, another_request)
    intake.accept_many(tenant, [moved_to_11])
    with engine.connect() as conn:
        event_id = conn.execute(
            select(schema.events.c.id).where(schema.events.c.idempotency_key == "k-11")
        ).scalar_one()
    (mail,) = [m for m in factories.all_messages(engine) if m["event_id"] == event_id]
    text = mail["body_text"].replace("\u202f", " ")  # Babel's narrow space before AM
    assert "Before: Saturday, March 28, 2026, 9:00 AM" in text, "not 10:00: the version before"
    assert "Now: Saturday, March 28, 2026, 11:00 AM" in text


def moved(event: EventInput, key: str, start: str) -> EventInput:
    subject = {**event.subject, "start": start}
    return EventInput("booking.modified", key, event.occurred_at, subject)


def test_a_rehearsed_batch_is_stored_at_the_time_of_its_transaction(
    engine: Engine,
    intake: Intake,
    tenant: Tenant,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What follows the received time (the staff digest a booking goes in) follows the commit."""
    worker_sending(engine, tenant, clock, owner=ELSEWHERE)
    rehearsed_at = clock()
    rehearse_then(intake, monkeypatch, lambda: clock.advance(timedelta(seconds=2)))
    intake.accept_many(tenant, batch())
    with engine.connect() as conn:
        received = set(conn.execute(select(schema.events.c.received_at)).scalars())
    assert received == {rehearsed_at + timedelta(seconds=2)}
    assert {mail["created_at"] for mail in mails(engine).values()} == received


def test_a_rehearsed_batch_stores_what_a_batch_planned_in_its_transaction_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changes, a repeated key, the same subject twice, staff copies, two languages."""
    at = ManualClock()()
    batch = [
        booking(1, "m-1"),
        moved(booking(1, "m-1"), "k-1-moved", "2026-03-28T11:00:00+01:00"),
        booking(1, "m-1"),  # its key again
        moved(booking(0, "m-2"), "k-0-moved", "2026-03-28T09:00:00+01:00"),
        EventInput(
            "booking.cancelled",
            "k-0-cancelled",
            at,
            {**booking(0, "m-2").subject, "status": "cancelled"},
        ),
        booking(2, "m-3"),
    ]
    stored = []
    for rehearsed in (False, True):
        engine = create_db_engine(f"sqlite:///{tmp_path}/{rehearsed}.db")
        try:
            migrate(engine)
            clock = ManualClock(at)
            with engine.begin() as conn:
                tenant = create_tenant(conn, "Club", from_email="b@club.test", now=clock())
                for member, locale in (("m-1", "en"), ("m-2", "fr"), ("m-3", "en")):
                    data = ContactData(name=member, email=f"{member}@x.test", locale=locale)
                    upsert_contact(conn, tenant.id, member, data, now=clock())
                staff = ContactData(name="Sam", email="sam@x.test", booking_copy="each")
                upsert_contact(conn, tenant.id, "s-1", staff, now=clock())
            intake = Intake(engine, clock=clock, preference_links=lambda t, c: f"https://p/{t}/{c}")
            intake.accept_many(tenant, [booking(0, "m-2")])
            clock.advance(timedelta(minutes=1))
            if rehearsed:
                worker_sending(engine, tenant, clock, owner=ELSEWHERE)
                monkeypatch.setattr("courrier.engine.intake.LOOK_AGAIN", 0.0)
                rehearse_then(intake, monkeypatch, lambda: None)  # it must rehearse
            answers = intake.accept_many(tenant, batch)
            rows = [
                {k: v for k, v in row.items() if k not in ("id", "message_id_header")}
                for row in factories.all_messages(engine)
                if row["event_id"]
            ]
            stored.append(
                ([[(m.kind, m.address, m.status) for m in a.messages] for a in answers], rows)
            )
        finally:
            engine.dispose()
    plain, rehearsed_batch = stored
    assert len(plain[1]) >= 8
    assert rehearsed_batch == plain
