"""Intake on a real database: an event in, its subject kept, its confirmation planned once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import icalendar
import pytest
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.domain.default_kinds import BOOKING_CONFIRMATION
from courrier.domain.kinds import DEFAULT_CATALOGUE, Catalogue, NotificationKind, Timing
from courrier.engine.intake import EventInput, Intake, IntakeResult
from courrier.engine.wakeup import Wakeup
from courrier.errors import TemplateError, ValidationError
from courrier.store import schema, timeline
from courrier.store.contacts import ContactData, upsert_contact
from courrier.store.schema import STAFF_ONLY
from courrier.store.subjects import get_subject, versions_of
from courrier.store.tenants import Tenant, create_tenant
from tests.support import factories

TABLES = ("events", "subjects", "subject_versions", "messages", "message_events")


@pytest.fixture
def tenant(engine: Engine, clock: ManualClock) -> Tenant:
    """A club with two members, m-17 (Ada, English) and m-18 (Louis, French)."""
    with engine.begin() as conn:
        tenant = create_tenant(
            conn,
            "Aéroclub du Lac",
            from_email="bookings@club.test",
            from_name="Aéroclub du Lac",
            reply_to="office@club.test",
            timezone="Europe/Paris",
            now=clock(),
        )
        ada = ContactData(name="Ada Lovelace", email="Ada@Example.com", locale="en")
        louis = ContactData(name="Louis Bernard", email="louis@example.com", locale="fr")
        upsert_contact(conn, tenant.id, "m-17", ada, now=clock())
        upsert_contact(conn, tenant.id, "m-18", louis, now=clock())
    return tenant


@pytest.fixture
def wakeup() -> Iterator[Wakeup]:
    wakeup = Wakeup()
    yield wakeup
    wakeup.close()


@pytest.fixture
def intake(engine: Engine, clock: ManualClock, wakeup: Wakeup) -> Intake:
    """Intake with the confirmation alone: these tests are about intake, not the catalogue."""
    return Intake(engine, clock=clock, wakeup=wakeup, catalogue=Catalogue([BOOKING_CONFIRMATION]))


def created(booking: str = "B-1001", key: str | None = None, **changes: Any) -> EventInput:
    subject: dict[str, Any] = {
        "type": "booking",
        "id": booking,
        "start": "2026-03-28T10:00:00+01:00",
        "end": "2026-03-28T12:00:00+01:00",
        "timezone": "Europe/Paris",
        "booker": "m-17",
        "resource": {"id": "F-GABC", "name": "Robin DR400"},
        "status": "confirmed",
        "paid": False,
        **changes,
    }
    return EventInput(
        type="booking.created",
        idempotency_key=key or f"{booking}-created",
        occurred_at=ManualClock()(),
        subject=subject,
    )


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: conn.execute(
                select(func.count()).select_from(schema.metadata.tables[name])
            ).scalar_one()
            for name in TABLES
        }


def message_rows(engine: Engine) -> list[dict[str, Any]]:
    return factories.all_messages(engine)


def test_a_created_booking_plans_one_confirmation_due_now(
    engine: Engine, intake: Intake, tenant: Tenant, clock: ManualClock, wakeup: Wakeup
) -> None:
    result = intake.accept(tenant, created())
    assert result.created
    (planned,) = result.messages
    assert (planned.kind, planned.channel, planned.address, planned.contact) == (
        "booking.confirmation",
        "email",
        "ada@example.com",
        "m-17",
    )
    assert (planned.status, planned.due_at) == ("due", clock())
    (row,) = message_rows(engine)
    assert row["id"] == planned.id
    assert (row["from_addr"], row["from_name"], row["reply_to"]) == (
        "bookings@club.test",
        "Aéroclub du Lac",
        "office@club.test",
    )
    assert row["to_name"] == "Ada Lovelace"
    assert row["subject_line"] and row["body_text"] and row["body_html"]
    assert row["message_id_header"].endswith("@club.test>")
    assert wakeup.wait(0), "the dispatcher is woken for a message due now"


def test_the_confirmation_carries_a_calendar_invitation_for_the_booking(
    engine: Engine, intake: Intake, tenant: Tenant
) -> None:
    intake.accept(tenant, created())
    (row,) = message_rows(engine)
    (attachment,) = row["attachments"]
    assert attachment["content_type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(attachment["content"])
    assert str(calendar["METHOD"]) == "REQUEST"
    (vevent,) = calendar.walk("VEVENT")
    assert str(vevent["UID"]) == "booking-B-1001@club.test"
    assert int(vevent["SEQUENCE"]) == 0
    assert vevent.decoded("DTSTART").isoformat() == "2026-03-28T10:00:00+01:00"
    assert "ada@example.com" in str(vevent["ATTENDEE"]).lower()
    assert "bookings@club.test" in str(vevent["ORGANIZER"]).lower()


def test_the_planned_message_starts_its_timeline(
    engine: Engine, intake: Intake, tenant: Tenant, clock: ManualClock
) -> None:
    (planned,) = intake.accept(tenant, created()).messages
    with engine.connect() as conn:
        (entry,) = timeline.timeline_of(conn, planned.id)
    assert (entry["entry"], entry["status"], entry["at"]) == ("planned", "due", clock())


def test_the_same_key_twice_stores_and_plans_once_and_answers_the_same(
    engine: Engine, intake: Intake, tenant: Tenant
) -> None:
    first = intake.accept(tenant, created())
    before = counts(engine)
    again = intake.accept(tenant, created())
    assert (
        counts(engine)
        == before
        == {
            "events": 1,
            "subjects": 1,
            "subject_versions": 1,
            "messages": 1,
            "message_events": 1,
        }
    )
    assert not again.created
    assert (again.event_id, again.messages) == (first.event_id, first.messages)


def test_racing_requests_with_one_key_store_it_once(
    engine: Engine, intake: Intake, tenant: Tenant
) -> None:
    barrier = threading.Barrier(6)
    results: list[IntakeResult] = []
    errors: list[BaseException] = []

    def post() -> None:
        barrier.wait()
        try:
            results.append(intake.accept(tenant, created()))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(r.created for r in results) == [False] * 5 + [True]
    assert len({(r.event_id, tuple(r.messages)) for r in results}) == 1
    assert counts(engine)["events"] == counts(engine)["messages"] == 1


def test_every_version_of_a_subject_is_kept(engine: Engine, intake: Intake, tenant: Tenant) -> None:
    intake.accept(tenant, created())
    moved = replace(
        created(start="2026-03-28T14:00:00+01:00", end="2026-03-28T16:00:00+01:00"),
        type="booking.modified",
        idempotency_key="B-1001-moved",
    )
    result = intake.accept(tenant, moved)
    assert result.created and result.messages == []
    with engine.connect() as conn:
        subject = get_subject(conn, tenant.id, "booking", "B-1001")
        assert subject is not None
        versions = versions_of(conn, subject.id)
    assert subject.version == 2
    assert subject.state["start"] == "2026-03-28T14:00:00+01:00"
    assert [(v["version"], v["state"]["start"]) for v in versions] == [
        (1, "2026-03-28T10:00:00+01:00"),
        (2, "2026-03-28T14:00:00+01:00"),
    ]
    assert versions[1]["event_id"] == result.event_id


def test_an_unknown_event_type_is_stored_and_plans_nothing(
    engine: Engine, intake: Intake, tenant: Tenant
) -> None:
    event = EventInput(
        type="parcel.delivered",
        idempotency_key="p-1",
        occurred_at=ManualClock()(),
        subject={"type": "parcel", "id": "P-1", "weight": 2},
    )
    result = intake.accept(tenant, event)
    assert result.created and result.messages == []
    assert counts(engine)["events"] == counts(engine)["subjects"] == 1


def test_the_same_booking_created_under_two_keys_is_confirmed_once(
    engine: Engine, intake: Intake, tenant: Tenant
) -> None:
    intake.accept(tenant, created(key="first"))
    second = intake.accept(tenant, created(key="second"))
    assert second.created and second.messages == []
    assert counts(engine)["messages"] == 1


def test_only_bookings_known_before_a_batch_have_their_send_keys_looked_up(
    engine: Engine, intake: Intake, tenant: Tenant
) -> None:
    """A send key starts with its subject, and a booking new to the database has no message:
    a batch of new bookings (an import) asks nothing about keys, however full the table."""
    intake.accept(tenant, created("B-1"))
    lookups: list[str] = []

    def watch(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "send_key" in statement:
            lookups.append(statement)

    sqlalchemy_event.listen(engine, "before_cursor_execute", watch)
    try:
        fresh = intake.accept_many(tenant, [created("B-2"), created("B-3", booker="m-18")])
        assert lookups == []
        again = intake.accept_many(tenant, [created("B-1", key="B-1-again"), created("B-4")])
        assert lookups != []  # B-1 was known: its confirmation's key is looked for, and found
    finally:
        sqlalchemy_event.remove(engine, "before_cursor_execute", watch)
    assert [len(r.messages) for r in (*fresh, *again)] == [1, 1, 0, 1]
    assert counts(engine)["messages"] == 4


def test_a_batch_answers_in_order_and_replays_repeats_within_it(
    engine: Engine, intake: Intake, tenant: Tenant
) -> None:
    intake.accept(tenant, created("B-1"))
    batch = [created("B-1"), created("B-2"), created("B-3", booker="m-18"), created("B-2")]
    results = intake.accept_many(tenant, batch)
    assert [r.created for r in results] == [False, True, True, False]
    assert results[3].event_id == results[1].event_id
    assert [m.address for m in results[2].messages] == ["louis@example.com"]
    assert counts(engine)["messages"] == 3
    rows = message_rows(engine)
    assert rows[2]["locale"] == "fr"


def test_an_unknown_booker_is_refused_and_nothing_is_written(
    engine: Engine, intake: Intake, tenant: Tenant
) -> None:
    with pytest.raises(ValidationError) as caught:
        intake.accept(tenant, created(booker="m-404"))
    assert caught.value.field == "subject.booker"
    assert set(counts(engine).values()) == {0}


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (created(end="2026-03-28T09:00:00+01:00"), "subject.end"),
        (created(timezone="Europe/Atlantis"), "subject.timezone"),
        (created(type="visit"), "subject.type"),
        (replace(created(), idempotency_key=""), "idempotency_key"),
    ],
    ids=["end-before-start", "bad-zone", "wrong-subject-type", "empty-key"],
)
def test_a_bad_event_is_refused_naming_the_field(
    engine: Engine, intake: Intake, tenant: Tenant, event: EventInput, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        intake.accept(tenant, event)
    assert caught.value.field == field
    assert set(counts(engine).values()) == {0}


def test_a_render_error_halfway_through_a_batch_leaves_nothing_written(
    engine: Engine, clock: ManualClock, tenant: Tenant
) -> None:
    broken = NotificationKind(
        name="booking.audit",
        triggers=frozenset({"booking.audited"}),
        subject_type="booking",
        recipients=("booker",),
        template="no.such.template",
    )
    intake = Intake(engine, clock=clock, catalogue=Catalogue((*DEFAULT_CATALOGUE, broken)))
    audited = replace(created("B-3"), type="booking.audited", idempotency_key="B-3-audit")
    with pytest.raises(TemplateError):
        intake.accept_many(tenant, [created("B-1"), created("B-2"), audited])
    assert set(counts(engine).values()) == {0}


def test_a_message_due_later_is_planned_not_due_and_wakes_nobody(
    engine: Engine, clock: ManualClock, tenant: Tenant, wakeup: Wakeup
) -> None:
    confirmation = DEFAULT_CATALOGUE.get("booking.confirmation")
    assert confirmation is not None
    delayed = replace(confirmation, timing=Timing.after_event(timedelta(minutes=10)))
    intake = Intake(engine, clock=clock, wakeup=wakeup, catalogue=Catalogue((delayed,)))
    (planned,) = intake.accept(tenant, created()).messages
    assert planned.status == "planned"
    assert planned.due_at == clock() + timedelta(minutes=10)
    assert not wakeup.wait(0)


@pytest.mark.postgres_only
def test_workers_listening_on_postgresql_are_woken_when_intake_commits(
    engine: Engine, clock: ManualClock, tenant: Tenant
) -> None:
    """Another process's dispatcher hears NOTIFY courrier_due, sent inside intake's transaction."""
    listener = Wakeup()
    listener.listen(engine)
    try:
        listener.wait(2)  # the poke every listener gives itself once connected
        assert not listener.wait(0.3)
        Intake(engine, clock=clock).accept(tenant, created())
        assert listener.wait(5)
    finally:
        listener.close()


def test_racing_events_about_one_new_subject_keep_both_versions(
    engine: Engine, intake: Intake, tenant: Tenant
) -> None:
    """Two events for a booking nobody has seen yet, at once: both kept, versions 1 and 2."""
    barrier = threading.Barrier(2)
    results: list[IntakeResult] = []
    events = [created(key="first"), replace(created(), type="booking.noted", idempotency_key="x")]

    def post(event: EventInput) -> None:
        barrier.wait()
        results.append(intake.accept(tenant, event))

    threads = [threading.Thread(target=post, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.created for r in results) == [True, True]
    with engine.connect() as conn:
        subject = get_subject(conn, tenant.id, "booking", "B-1001")
        assert subject is not None
        assert [v["version"] for v in versions_of(conn, subject.id)] == [1, 2]
    assert counts(engine)["messages"] == 1


def test_a_batch_costs_the_same_few_statements_whatever_its_size(
    engine: Engine, intake: Intake, tenant: Tenant, clock: ManualClock
) -> None:
    """accept_many batches its writes: 20 events or 200, the same number of round trips."""
    with engine.begin() as conn:
        for n in range(200):
            upsert_contact(
                conn, tenant.id, f"b-{n}", ContactData(email=f"b{n}@x.test"), now=clock()
            )
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    def run(first: int, size: int) -> int:
        statements.clear()
        batch = [created(f"N-{n}", booker=f"b-{n}") for n in range(first, first + size)]
        sqlalchemy_event.listen(engine, "before_cursor_execute", count)
        try:
            results = intake.accept_many(tenant, batch)
        finally:
            sqlalchemy_event.remove(engine, "before_cursor_execute", count)
        assert all(r.created and len(r.messages) == 1 for r in results)
        return len(statements)

    small = run(0, 20)
    assert run(20, 180) == small <= 20


def test_a_bad_event_in_a_batch_refuses_the_batch_saying_which_event(
    engine: Engine, intake: Intake, tenant: Tenant
) -> None:
    batch = [created("B-1"), created("B-2", end="2026-03-28T08:00:00+01:00")]
    with pytest.raises(ValidationError) as caught:
        intake.accept_many(tenant, batch)
    assert caught.value.field == "subject.end"
    assert caught.value.message.startswith("event 1: ")
    batch = [created("B-1"), created("B-2"), created("B-3", booker="m-404")]
    with pytest.raises(ValidationError) as caught:
        intake.accept_many(tenant, batch)
    assert caught.value.field == "subject.booker"
    assert caught.value.message.startswith("event 2: ")
    assert set(counts(engine).values()) == {0}


def test_an_event_is_stored_with_its_subject_and_payload(
    engine: Engine, intake: Intake, tenant: Tenant
) -> None:
    intake.accept_many(tenant, [created("B-1"), replace(created("B-2"), payload={"note": "é"})])
    with engine.connect() as conn:
        query = select(schema.events.c.payload).order_by(schema.events.c.id)
        stored = list(conn.execute(query).scalars())
    assert [s["payload"] for s in stored] == [{}, {"note": "é"}]
    assert [s["subject"]["id"] for s in stored] == ["B-1", "B-2"]


def test_a_booking_batch_reads_the_staff_once_for_their_copies_and_digests(
    engine: Engine, tenant: Tenant, clock: ManualClock, wakeup: Wakeup
) -> None:
    """The staff copy's recipients and the digest's come from one read of the staff."""
    with engine.begin() as conn:
        for external_id, copy in (("s-1", "digest"), ("s-2", "each")):
            staff = ContactData(email=f"{external_id}@club.test", booking_copy=copy)
            upsert_contact(conn, tenant.id, external_id, staff, now=clock())
    intake = Intake(engine, clock=clock, wakeup=wakeup)  # the default catalogue
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    sqlalchemy_event.listen(engine, "before_cursor_execute", count)
    try:
        (result,) = intake.accept_many(tenant, [created("B-1")])
    finally:
        sqlalchemy_event.remove(engine, "before_cursor_execute", count)
    assert result.created
    assert len([s for s in statements if str(STAFF_ONLY) in s]) == 1
    with engine.connect() as conn:
        query = select(schema.messages.c.kind, schema.messages.c.address)
        planned = {(kind, address) for kind, address in conn.execute(query)}
    assert {
        ("booking.confirmation", "ada@example.com"),
        ("booking.staff_copy", "s-2@club.test"),
        ("booking.staff_digest", "s-1@club.test"),
    } <= planned
