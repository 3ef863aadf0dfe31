"""Events posted one at a time from many threads share transactions; each gets its own answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from courrier.engine.group_commit import GroupCommit
from courrier.engine.intake import EventInput, Intake, IntakeResult
from courrier.errors import ValidationError
from courrier.store.contacts import ContactData, upsert_contact
from courrier.store.tenants import Tenant, create_tenant

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def booking(number: int, booker: str = "m-1", key: str | None = None) -> EventInput:
    return EventInput(
        type="booking.created",
        idempotency_key=key or f"B-{number}-created",
        occurred_at=NOW,
        subject={
            "type": "booking",
            "id": f"B-{number}",
            "start": "2026-03-05T10:00:00+01:00",
            "end": "2026-03-05T12:00:00+01:00",
            "timezone": "Europe/Paris",
            "booker": booker,
            "status": "confirmed",
            "paid": True,
        },
    )


def tenant_with_member(engine: Engine, name: str) -> Tenant:
    with engine.begin() as conn:
        tenant = create_tenant(conn, name, from_email=f"desk@{name}.example", now=NOW)
        data = ContactData(name="Camille Martin", email=f"camille@{name}.example", locale="fr")
        upsert_contact(conn, tenant.id, "m-1", data, now=NOW)
    return tenant


def commits(engine: Engine) -> list[int]:
    """A counter of the engine's commits (its only item grows)."""
    count = [0]

    def counted(_conn: Any) -> None:
        count[0] += 1

    event.listen(engine, "commit", counted)
    return count


class HeldFirstGroup:
    """accept_many for a GroupCommit whose first call waits until ``waiting`` others queue."""

    def __init__(self, gate: GroupCommit, waiting: int) -> None:
        self.gate, self.waiting = gate, waiting
        self.groups: list[list[str]] = []

    def __call__(self, tenant: Tenant, events: Sequence[EventInput]) -> list[IntakeResult]:
        if not self.groups:
            deadline = time.monotonic() + 5
            while len(self.gate._waiting) < self.waiting and time.monotonic() < deadline:
                time.sleep(0.005)
        self.groups.append([e.idempotency_key for e in events])
        for i, e in enumerate(events):
            if e.subject["booker"] != "m-1":
                raise ValidationError("no contact: create it first", "subject.booker", event=i)
        return [
            IntakeResult(event_id=hash(e.idempotency_key), created=True, messages=[])
            for e in events
        ]


def run_at_once(accept: Callable[[EventInput], Any], events: list[EventInput]) -> list[Any]:
    """``accept`` each event from its own thread, all at once; each result or exception."""

    def one(e: EventInput) -> Any:
        try:
            return accept(e)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(events)) as pool:
        return list(pool.map(one, events))


def test_events_that_wait_while_a_transaction_runs_go_together_in_the_next() -> None:
    gate = GroupCommit(lambda tenant, events: [])
    accept_many = HeldFirstGroup(gate, waiting=5)
    gate._accept_many = accept_many
    tenant = Tenant(1, "t", "desk@t.example", None, None, "UTC", "en")
    results = run_at_once(lambda e: gate.accept(tenant, e), [booking(n) for n in range(6)])
    assert all(isinstance(r, IntakeResult) for r in results)
    # the first went alone (nothing to wait for), the five that came meanwhile together
    assert [len(group) for group in accept_many.groups] == [1, 5]
    assert {r.event_id for r in results} == {hash(f"B-{n}-created") for n in range(6)}


def test_a_refused_event_gets_its_own_error_and_the_others_their_answers() -> None:
    gate = GroupCommit(lambda tenant, events: [])
    accept_many = HeldFirstGroup(gate, waiting=4)
    gate._accept_many = accept_many
    tenant = Tenant(1, "t", "desk@t.example", None, None, "UTC", "en")
    events = [booking(0), booking(1), booking(2, booker="m-404"), booking(3), booking(4)]
    results = run_at_once(lambda e: gate.accept(tenant, e), events)
    refused = results[2]
    assert isinstance(refused, ValidationError) and refused.field == "subject.booker"
    assert all(isinstance(r, IntakeResult) for i, r in enumerate(results) if i != 2)
    # the refused one was tried again alone, the rest again together
    assert ["B-2-created"] in accept_many.groups
    assert ["B-1-created", "B-3-created", "B-4-created"] in accept_many.groups


@pytest.mark.slow
def test_many_threads_posting_at_once_are_all_accepted_in_fewer_transactions(
    engine: Engine,
) -> None:
    tenant = tenant_with_member(engine, "alpha")
    intake = Intake(engine, clock=lambda: NOW)
    count = commits(engine)
    events = [booking(n) for n in range(40)]
    results = run_at_once(lambda e: intake.accept(tenant, e), events)
    assert all(isinstance(r, IntakeResult) and r.created for r in results), results
    assert len({r.event_id for r in results}) == 40
    assert all(r.messages[0].address == "camille@alpha.example" for r in results)
    assert count[0] < 40


def test_a_bad_event_among_good_ones_is_refused_as_if_posted_alone(engine: Engine) -> None:
    tenant = tenant_with_member(engine, "alpha")
    intake = Intake(engine, clock=lambda: NOW)
    events = [booking(n) for n in range(8)]
    events[3] = booking(3, booker="m-404")
    results = run_at_once(lambda e: intake.accept(tenant, e), events)
    refused = results[3]
    assert isinstance(refused, ValidationError)
    assert refused.field == "subject.booker"
    assert refused.message.startswith("no contact 'm-404'")  # no position: it was posted alone
    assert all(isinstance(r, IntakeResult) and r.created for i, r in enumerate(results) if i != 3)


def test_one_key_posted_twice_at_once_is_stored_once(engine: Engine) -> None:
    tenant = tenant_with_member(engine, "alpha")
    intake = Intake(engine, clock=lambda: NOW)
    first, second = run_at_once(
        lambda e: intake.accept(tenant, e), [booking(1, key="same"), booking(1, key="same")]
    )
    assert first.event_id == second.event_id
    assert sorted([first.created, second.created]) == [False, True]


def test_events_of_two_tenants_at_once_stay_with_their_tenant(engine: Engine) -> None:
    alpha, bravo = tenant_with_member(engine, "alpha"), tenant_with_member(engine, "bravo")
    intake = Intake(engine, clock=lambda: NOW)
    lock = threading.Lock()
    owners: dict[str, str] = {}

    def accept(e: EventInput) -> IntakeResult:
        tenant = alpha if int(e.subject["id"].split("-")[1]) % 2 else bravo
        result = intake.accept(tenant, e)
        with lock:
            owners[result.messages[0].address] = tenant.name
        return result

    results = run_at_once(accept, [booking(n) for n in range(10)])
    assert all(isinstance(r, IntakeResult) for r in results)
    assert owners == {"camille@alpha.example": "alpha", "camille@bravo.example": "bravo"}


def test_a_failure_of_the_database_is_every_waiting_events_answer_at_once() -> None:
    calls: list[int] = []
    gate = GroupCommit(lambda tenant, events: [])
    held = HeldFirstGroup(gate, waiting=5)

    def failing(tenant: Tenant, events: Sequence[EventInput]) -> list[IntakeResult]:
        calls.append(len(events))
        if len(calls) == 1:
            return held(tenant, events)  # the first, alone, while the others queue
        raise ConnectionError("the database went away")

    gate._accept_many = failing
    tenant = Tenant(1, "t", "desk@t.example", None, None, "UTC", "en")
    results = run_at_once(lambda e: gate.accept(tenant, e), [booking(n) for n in range(6)])
    assert sum(isinstance(r, ConnectionError) for r in results) == 5
    assert calls == [1, 5]  # one try for the five, not one each while the others wait


def test_one_tenants_transaction_does_not_hold_another_tenants_events(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha, bravo = tenant_with_member(engine, "alpha"), tenant_with_member(engine, "bravo")
    intake = Intake(engine, clock=lambda: NOW)
    release = threading.Event()
    accept_many = intake.accept_many

    def slow_for_alpha(tenant: Tenant, events: Sequence[EventInput]) -> list[IntakeResult]:
        if tenant.id == alpha.id:
            assert release.wait(10)
        return accept_many(tenant, events)

    monkeypatch.setattr(intake, "accept_many", slow_for_alpha)
    intake._lanes.clear()  # lanes made from now on call the slow accept_many
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(intake.accept, alpha, booking(1))
        time.sleep(0.1)  # alpha's transaction is under way
        started = time.monotonic()
        answer = intake.accept(bravo, booking(2))
        waited = time.monotonic() - started
        release.set()
        assert held.result(10).created
    assert answer.created and waited < 5
