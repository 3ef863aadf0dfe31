"""Rate limits per tenant and per recipient domain, with the dispatcher on a real SMTP server.

Time is a ManualClock: what is over a limit must wait until the minute
allows it, then leave; another tenant's mail must not wait at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, update
from sqlalchemy.engine import Engine

from courrier.channels.email import SmtpSender
from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from courrier.engine.ratelimit import rate_limited
from courrier.settings import Settings
from courrier.store import queue, timeline
from courrier.store.schema import tenants
from tests.support import factories
from tests.support.smtp import SmtpServer


@pytest.fixture
def sender(settings: Settings) -> Iterator[SmtpSender]:
    assert settings.smtp is not None
    sender = SmtpSender(settings.smtp, pool_size=2, timeout=5)
    yield sender
    sender.close()


@pytest.fixture
def workers(
    engine: Engine, settings: Settings, sender: SmtpSender, clock: ManualClock
) -> Iterator[Any]:
    made: list[Dispatcher] = []

    def make(worker_id: str = "worker-a", **changes: Any) -> Dispatcher:
        worker = Dispatcher(
            engine,
            settings.model_copy(update=changes),
            sender,
            clock=clock,
            worker_id=worker_id,
        )
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.close()


def tenant(engine: Engine, clock: ManualClock, **limits: int | None) -> int:
    with engine.begin() as conn:
        tenant_id = factories.insert_tenant(conn, now=clock())
        if limits:
            conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(**limits))
    return tenant_id


def add(engine: Engine, tenant_id: int, count: int, clock: ManualClock, **row: Any) -> list[int]:
    with engine.begin() as conn:
        return factories.insert_messages(conn, tenant_id, count, now=clock(), **row)


def sent(engine: Engine, ids: list[int]) -> int:
    return factories.statuses(engine, ids).get("sent", 0)


def drain(worker: Dispatcher, batches: int = 5) -> None:
    """Run a few batches: one wholly deferred counts 0 yet the next may send (as ``run`` does)."""
    for _ in range(batches):
        worker.run_once()


def entries(engine: Engine, message_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return timeline.timeline_of(conn, message_id)


def test_a_tenant_over_its_limit_waits_for_the_minute_and_is_then_sent(
    engine: Engine, workers: Any, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    ids = add(engine, tenant(engine, clock, rate_per_minute=3), 5, clock)
    worker = workers()
    assert worker.run_once() == 3  # handled; the other two went back to the queue
    assert sent(engine, ids) == 3
    assert len(smtp_server.received) == 3
    held = [i for i in ids if factories.message(engine, i)["status"] == "due"]
    assert len(held) == 2
    for message_id in held:
        row = factories.message(engine, message_id)
        assert row["due_at"] == clock() + timedelta(seconds=60)
        assert row["attempts"] == 0  # a deferral is not a failed attempt
        last = entries(engine, message_id)[-1]
        assert last["entry"] == "rate_limited"
        assert last["reason"] == "tenant rate limit: 3 messages a minute"
    assert worker.run_once() == 0
    clock.advance(timedelta(seconds=60))
    drain(worker)
    assert sent(engine, ids) == 5
    assert [e["entry"] for e in entries(engine, held[0])] == [
        "claimed",
        "rate_limited",
        "claimed",
        "sent",
    ]


@pytest.mark.parametrize("batch_size", [100, 2])
def test_a_burst_drains_at_the_limits_pace(
    engine: Engine, workers: Any, clock: ManualClock, batch_size: int
) -> None:
    """Over one batch or several: later batches queue behind what earlier ones put back."""
    ids = add(engine, tenant(engine, clock), 6, clock)
    # the setting, for tenants without a limit of their own
    worker = workers(rate_per_minute=2, batch_size=batch_size)
    drain(worker)
    assert sent(engine, ids) == 2
    due = sorted(factories.message(engine, i)["due_at"] - clock() for i in ids[2:])
    assert due == [timedelta(seconds=s) for s in (60, 60, 120, 120)]
    for expected in (4, 6):
        clock.advance(timedelta(seconds=60))
        drain(worker)
        assert sent(engine, ids) == expected


def test_one_tenants_burst_does_not_hold_back_another_tenant(
    engine: Engine, workers: Any, clock: ManualClock
) -> None:
    venue_a = add(engine, tenant(engine, clock, rate_per_minute=2), 10, clock)
    clock.advance(timedelta(seconds=1))  # B's mail is due after the whole of A's burst
    venue_b = add(engine, tenant(engine, clock), 3, clock)
    drain(workers(batch_size=5))
    assert sent(engine, venue_b) == 3
    assert sent(engine, venue_a) == 2
    assert factories.statuses(engine, venue_a) == {"sent": 2, "due": 8}


def test_each_tenant_has_its_own_minute_under_the_shared_setting(
    engine: Engine, workers: Any, clock: ManualClock
) -> None:
    venue_a = add(engine, tenant(engine, clock), 5, clock)
    venue_b = add(engine, tenant(engine, clock), 5, clock)
    unlimited = add(engine, tenant(engine, clock, rate_per_minute=0), 5, clock)
    drain(workers(rate_per_minute=2))
    assert (sent(engine, venue_a), sent(engine, venue_b), sent(engine, unlimited)) == (2, 2, 5)


def test_a_recipient_domain_over_its_limit_waits_while_other_domains_go(
    engine: Engine, workers: Any, clock: ManualClock
) -> None:
    venue = tenant(engine, clock, domain_rate_per_minute=2)
    busy = add(engine, venue, 3, clock)  # member0..2@example.test
    other = add(engine, venue, 2, clock, address="Someone@Other.TEST")
    worker = workers()
    drain(worker)
    assert sent(engine, other) == 2
    assert sent(engine, busy) == 2
    [held] = [i for i in busy if factories.message(engine, i)["status"] == "due"]
    assert entries(engine, held)[-1]["reason"] == (
        "domain rate limit: 2 messages a minute to example.test"
    )
    clock.advance(timedelta(seconds=60))
    drain(worker)
    assert sent(engine, busy) == 3


def test_sends_of_another_worker_earlier_in_the_minute_count(
    engine: Engine, workers: Any, clock: ManualClock
) -> None:
    venue = tenant(engine, clock, rate_per_minute=2)
    first = add(engine, venue, 2, clock)
    started = clock()
    drain(workers("worker-a"))
    assert sent(engine, first) == 2
    clock.advance(timedelta(seconds=30))
    [late] = add(engine, venue, 1, clock)
    worker_b = workers("worker-b")
    drain(worker_b)
    row = factories.message(engine, late)
    assert (row["status"], row["due_at"]) == ("due", started + timedelta(seconds=60))
    clock.advance(timedelta(seconds=30))
    drain(worker_b)
    assert factories.message(engine, late)["status"] == "sent"


def test_no_query_is_made_when_no_limit_applies(
    engine: Engine, settings: Settings, clock: ManualClock
) -> None:
    add(engine, tenant(engine, clock), 3, clock)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    with engine.begin() as conn:
        claimed = queue.claim_due(
            conn, now=clock(), worker_id="w", lease_until=clock() + timedelta(seconds=60), limit=10
        )
        assert rate_limited(conn, claimed, clock(), settings) == []  # reads the tenant once
        event.listen(engine, "before_cursor_execute", count)
        try:
            for _ in range(3):
                assert rate_limited(conn, claimed, clock(), settings) == []
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert statements == []


def test_copies_count_against_their_own_domains(
    engine: Engine, workers: Any, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    """A Cc or Bcc at a provider spends that provider's minute, in the batch and after it."""
    venue = tenant(engine, clock, domain_rate_per_minute=1)
    [copied] = add(
        engine, venue, 1, clock, address="ana@one.test", cc_addrs=["Bo@Two.TEST"], bcc_addrs=None
    )
    [direct] = add(engine, venue, 1, clock, address="cy@two.test")
    worker = workers()
    drain(worker)
    assert factories.message(engine, copied)["status"] == "sent"
    row = factories.message(engine, direct)
    assert (row["status"], row["due_at"]) == ("due", clock() + timedelta(seconds=60))
    assert row["status_reason"] == "domain rate limit: 1 messages a minute to two.test"

    # A later batch reads the minute from the database: the Bcc of a sent mail counts there.
    clock.advance(timedelta(seconds=60))
    drain(worker)
    assert factories.message(engine, direct)["status"] == "sent"
    clock.advance(timedelta(seconds=61))
    [blind] = add(engine, venue, 1, clock, address="di@three.test", bcc_addrs=["eve@four.test"])
    drain(worker)
    assert factories.message(engine, blind)["status"] == "sent"
    clock.advance(timedelta(seconds=1))
    [late] = add(engine, venue, 1, clock, address="fay@four.test")
    drain(workers("worker-b"))
    row = factories.message(engine, late)
    assert row["status"] == "due"
    assert row["status_reason"] == "domain rate limit: 1 messages a minute to four.test"
    # The mail to four.test waits for the blind copy's minute to end, not for a fresh one.
    assert row["due_at"] == clock() - timedelta(seconds=1) + timedelta(seconds=60)


def test_a_message_over_two_domain_limits_waits_for_both(
    engine: Engine, workers: Any, clock: ManualClock
) -> None:
    venue = tenant(engine, clock, domain_rate_per_minute=1)
    first = add(engine, venue, 1, clock, address="a@one.test")
    clock.advance(timedelta(seconds=20))
    second = add(engine, venue, 1, clock, address="b@two.test")
    drain(workers())
    assert sent(engine, first + second) == 2
    [both] = add(engine, venue, 1, clock, address="c@one.test", cc_addrs=["d@two.test"])
    drain(workers())
    row = factories.message(engine, both)
    assert row["status_reason"] == (
        "domain rate limit: 1 messages a minute to one.test; "
        "domain rate limit: 1 messages a minute to two.test"
    )
    assert row["due_at"] == clock() + timedelta(seconds=60)  # two.test's send was the later one
    clock.advance(timedelta(seconds=40))
    drain(workers())
    assert factories.message(engine, both)["status"] == "due"  # due when two.test has room too
    clock.advance(timedelta(seconds=20))
    drain(workers())
    assert factories.message(engine, both)["status"] == "sent"
