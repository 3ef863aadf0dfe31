"""The dispatcher against a real SMTP server and a real database, time driven by a ManualClock."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from courrier import metrics
from courrier.channels.email import SmtpSender
from courrier.clock import ManualClock, utcnow
from courrier.engine.dispatcher import Dispatcher
from courrier.settings import Settings, parse_smtp_url
from courrier.store import queue, timeline
from tests.channels.servers import CountingHandler, serve
from tests.support import factories
from tests.support.services import free_port
from tests.support.smtp import SmtpServer


@pytest.fixture
def sender(settings: Settings) -> Iterator[SmtpSender]:
    assert settings.smtp is not None
    sender = SmtpSender(settings.smtp, pool_size=2, timeout=5)
    yield sender
    sender.close()


def make_dispatcher(
    engine: Engine, settings: Settings, sender: SmtpSender, clock: ManualClock, **changes: object
) -> Dispatcher:
    return Dispatcher(
        engine, settings.model_copy(update=changes), sender, clock=clock, worker_id="worker-a"
    )


@pytest.fixture
def dispatcher(
    engine: Engine, settings: Settings, sender: SmtpSender, clock: ManualClock
) -> Iterator[Dispatcher]:
    dispatcher = make_dispatcher(engine, settings, sender, clock)
    yield dispatcher
    dispatcher.close()


def entries(engine: Engine, message_id: int) -> list[str]:
    with engine.connect() as conn:
        return [e["entry"] for e in timeline.timeline_of(conn, message_id)]


def last_entry(engine: Engine, message_id: int) -> dict[str, object]:
    with engine.connect() as conn:
        return timeline.timeline_of(conn, message_id)[-1]


def test_due_messages_leave_as_the_planned_mail_and_are_marked_sent(
    engine: Engine, dispatcher: Dispatcher, smtp_server: SmtpServer, clock: ManualClock
) -> None:
    ids = factories.seed(engine, 3, now=clock())
    assert dispatcher.run_once() == 3
    received = {r.message["Message-ID"]: r for r in smtp_server.wait_for(3)}
    for message_id in ids:
        row = factories.message(engine, message_id)
        mail = received[row["message_id_header"]]
        # the bounce address names the message (VERP), at the From's domain
        assert (
            mail.envelope_from
            == f"bounces+{dispatcher.outgoing.links.verp_token(message_id)}@courrier.test"
        )
        assert mail.message["From"].addresses[0].addr_spec == "club@courrier.test"
        assert mail.recipients == [row["address"]]
        assert mail.message["X-Courrier-Message"] == str(message_id)
        assert mail.message["Subject"] == row["subject_line"]
        assert mail.message["Reply-To"] == "office@courrier.test"
        ics = next(p for p in mail.message.iter_attachments() if p.get_filename() == "booking.ics")
        assert ics.get_content_type() == "text/calendar"
        assert (row["status"], row["sent_at"], row["attempts"], row["lease_owner"]) == (
            "sent",
            clock(),
            1,
            None,
        )
        assert entries(engine, message_id) == ["claimed", "sent"]
        assert last_entry(engine, message_id)["reason"] == "250 2.0.0 Ok: queued"
    assert dispatcher.run_once() == 0


def test_a_451_is_retried_later_and_then_sent(
    engine: Engine, dispatcher: Dispatcher, smtp_server: SmtpServer, clock: ManualClock
) -> None:
    [message_id] = factories.seed(engine, 1, now=clock())
    smtp_server.script("451 4.3.0 Try again later")
    assert dispatcher.run_once() == 1
    row = factories.message(engine, message_id)
    assert row["status"] == "due"
    assert row["status_reason"] == "451 4.3.0 Try again later"
    # settings: retry_base_seconds=1 → the first retry waits between 0.5 and 1 s
    assert clock() + timedelta(seconds=0.5) <= row["due_at"] <= clock() + timedelta(seconds=1)
    retry = last_entry(engine, message_id)
    assert retry["entry"] == "retry"
    assert retry["data"]["code"] == 451  # type: ignore[index]
    assert retry["data"]["status"] == "4.3.0"  # type: ignore[index]
    assert dispatcher.run_once() == 0  # not before its retry time
    clock.advance(timedelta(seconds=1))
    assert dispatcher.run_once() == 1
    row = factories.message(engine, message_id)
    assert (row["status"], row["attempts"]) == ("sent", 2)
    assert entries(engine, message_id) == ["claimed", "retry", "claimed", "sent"]
    assert len(smtp_server.received) == 1


def test_a_550_fails_at_once_with_the_server_reply(
    engine: Engine, dispatcher: Dispatcher, smtp_server: SmtpServer, clock: ManualClock
) -> None:
    [message_id] = factories.seed(engine, 1, now=clock())
    smtp_server.script("550 5.1.1 <member0@example.test>: Recipient address rejected: User unknown")
    before = metrics.send_failures.labels("email", "permanent")._value.get()
    assert dispatcher.run_once() == 1
    row = factories.message(engine, message_id)
    assert row["status"] == "failed"
    assert row["status_reason"] == (
        "550 5.1.1 <member0@example.test>: Recipient address rejected: User unknown"
    )
    assert entries(engine, message_id) == ["claimed", "failed"]
    failed = last_entry(engine, message_id)["data"]
    assert (failed["code"], failed["status"]) == (550, "5.1.1")  # type: ignore[index]
    assert metrics.send_failures.labels("email", "permanent")._value.get() == before + 1
    clock.advance(timedelta(hours=2))
    assert dispatcher.run_once() == 0


def test_transient_failures_give_up_after_max_attempts(
    engine: Engine,
    settings: Settings,
    sender: SmtpSender,
    smtp_server: SmtpServer,
    clock: ManualClock,
) -> None:
    dispatcher = make_dispatcher(engine, settings, sender, clock, max_attempts=3)
    [message_id] = factories.seed(engine, 1, now=clock())
    smtp_server.script(*["421 4.7.0 Too busy, come back later"] * 3)
    for _ in range(3):
        assert dispatcher.run_once() == 1
        clock.advance(timedelta(seconds=5))
    dispatcher.close()
    row = factories.message(engine, message_id)
    assert row["status"] == "failed"
    assert row["status_reason"] == "gave up after 3 attempts: 421 4.7.0 Too busy, come back later"
    assert entries(engine, message_id) == [
        "claimed",
        "retry",
        "claimed",
        "retry",
        "claimed",
        "failed",
    ]
    assert smtp_server.received == []


def test_higher_priority_leaves_first_then_earlier_due_time(
    engine: Engine, settings: Settings, sender: SmtpSender, clock: ManualClock
) -> None:
    now = clock()
    with engine.begin() as conn:
        tenant = factories.insert_tenant(conn, now=now)
        late_low = factories.insert_messages(conn, tenant, 3, now=now, priority=10)
        early_low = factories.insert_messages(
            conn, tenant, 1, now=now, priority=10, due_at=now - timedelta(minutes=5)
        )
        urgent = factories.insert_messages(conn, tenant, 1, now=now, priority=100)
        not_yet = factories.insert_messages(
            conn, tenant, 1, now=now, priority=100, due_at=now + timedelta(minutes=1)
        )
    dispatcher = make_dispatcher(engine, settings, sender, clock, batch_size=2)
    assert dispatcher.run_once() == 2
    dispatcher.close()
    assert factories.statuses(engine, urgent + early_low) == {"sent": 2}
    assert factories.statuses(engine, late_low) == {"due": 3}
    assert factories.statuses(engine, not_yet) == {"due": 1}


def test_an_expired_lease_is_taken_over_and_the_old_owner_cannot_overwrite(
    engine: Engine, dispatcher: Dispatcher, smtp_server: SmtpServer, clock: ManualClock
) -> None:
    [message_id] = factories.seed(engine, 1, now=clock())
    with engine.begin() as conn:  # a worker claims, then dies
        queue.claim_due(
            conn,
            now=clock(),
            worker_id="dead-worker",
            lease_until=clock() + timedelta(seconds=60),
            limit=10,
        )
    assert dispatcher.run_once() == 0  # the lease still holds
    clock.advance(timedelta(seconds=61))
    before = metrics.leases_taken_over._value.get()
    assert dispatcher.run_once() == 1
    assert metrics.leases_taken_over._value.get() == before + 1
    row = factories.message(engine, message_id)
    assert (row["status"], row["attempts"]) == ("sent", 2)
    takeover = [e for e in timeline_entries(engine, message_id) if e["entry"] == "taken_over"]
    assert "dead-worker" in str(takeover[0]["reason"])
    with engine.begin() as conn:  # the old owner wakes up and tries to record a retry
        recorded = queue.record_outcomes(
            conn,
            [queue.Outcome(message_id, queue.S.DUE, reason="late")],
            worker_id="dead-worker",
            now=clock(),
        )
    assert recorded == set()
    assert factories.message(engine, message_id)["status"] == "sent"
    assert len(smtp_server.received) == 1


def timeline_entries(engine: Engine, message_id: int) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return timeline.timeline_of(conn, message_id)


def test_a_mail_that_cannot_be_built_fails_with_the_reason(
    engine: Engine, dispatcher: Dispatcher, smtp_server: SmtpServer, clock: ManualClock
) -> None:
    [message_id] = factories.seed(engine, 1, now=clock(), address="not an address")
    assert dispatcher.run_once() == 1
    row = factories.message(engine, message_id)
    assert row["status"] == "failed"
    assert str(row["status_reason"]).startswith("cannot build the mail:")
    assert smtp_server.received == []


def test_an_unreachable_server_leaves_every_message_due_for_a_retry(
    engine: Engine, settings: Settings, clock: ManualClock
) -> None:
    ids = factories.seed(engine, 5, now=clock())
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{free_port()}"), pool_size=2, timeout=2)
    dispatcher = make_dispatcher(engine, settings, sender, clock)
    assert dispatcher.run_once() == 5
    dispatcher.close()
    assert factories.statuses(engine, ids) == {"due": 5}
    reason = factories.message(engine, ids[0])["status_reason"]
    assert "connection refused" in str(reason)


def test_a_batch_slower_than_its_lease_keeps_its_lease_alive(
    engine: Engine, settings: Settings
) -> None:
    slow = serve(CountingHandler(delay=0.4))
    sender = SmtpSender(parse_smtp_url(slow.url), pool_size=1, timeout=5)
    quick_lease = settings.model_copy(update={"lease_seconds": 0.6})
    first = Dispatcher(engine, quick_lease, sender, worker_id="worker-a")
    second = Dispatcher(engine, quick_lease, sender, worker_id="worker-b")
    try:
        factories.seed(engine, 3, now=utcnow())
        batch = threading.Thread(target=first.run_once)
        batch.start()
        while factories.statuses(engine).get("sending") != 3:  # the first worker holds them
            time.sleep(0.01)
        stolen = 0
        while batch.is_alive():  # 1.2 s of sending, twice the lease
            stolen += second.run_once()
            time.sleep(0.05)
        batch.join()
    finally:
        first.close()
        second.close()
        sender.close()
        slow.stop()
    assert stolen == 0
    assert len(slow.received) == 3


def test_messages_of_other_channels_are_left_alone(
    engine: Engine, dispatcher: Dispatcher, clock: ManualClock
) -> None:
    [message_id] = factories.seed(engine, 1, now=clock(), channel="sms", address="+33600000000")
    assert dispatcher.run_once() == 0
    assert factories.message(engine, message_id)["status"] == "due"


@pytest.mark.postgres_only
def test_a_batch_is_recorded_after_the_database_dropped_its_connections(
    engine: Engine, settings: Settings
) -> None:
    slow = serve(CountingHandler(delay=0.3))
    sender = SmtpSender(parse_smtp_url(slow.url), pool_size=1, timeout=5)
    dispatcher = Dispatcher(engine, settings, sender, worker_id="worker-a")
    try:
        ids = factories.seed(engine, 2, now=utcnow())
        batch = threading.Thread(target=dispatcher.run_once)
        batch.start()
        while factories.statuses(engine).get("sending") != 2:
            time.sleep(0.01)
        with engine.connect() as conn:  # what a database restart does to every session
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        batch.join()
    finally:
        dispatcher.close()
        sender.close()
        slow.stop()
    assert factories.statuses(engine, ids) == {"sent": 2}


def test_a_binary_attachment_stored_as_base64_arrives_byte_for_byte(
    engine: Engine, dispatcher: Dispatcher, smtp_server: SmtpServer, clock: ManualClock
) -> None:
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 4
    attachment = {
        "filename": "certificat médical.pdf",
        "content_type": "application/pdf",
        "content": base64.b64encode(pdf).decode(),
        "encoding": "base64",
    }
    factories.seed(engine, 1, now=clock(), attachments=[attachment])
    assert dispatcher.run_once() == 1
    [mail] = smtp_server.wait_for(1)
    [part] = list(mail.message.iter_attachments())
    assert part.get_filename() == "certificat médical.pdf"
    assert part.get_content() == pdf


class LeaseWatchingSender:
    """Sends through ``sender``; before each send, counts the messages leased in the database."""

    def __init__(self, sender: SmtpSender, engine: Engine) -> None:
        self._sender = sender
        self._engine = engine
        self.pool_size = sender.pool_size
        self.leased: list[int] = []

    def deliver_many(self, mails: object, **options: object) -> object:
        self.leased.append(factories.statuses(self._engine).get("sending", 0))
        return self._sender.deliver_many(mails, **options)  # type: ignore[arg-type]


def test_under_load_each_batch_is_recorded_with_the_next_claim_never_two_batches_leased(
    engine: Engine, settings: Settings, sender: SmtpSender, clock: ManualClock
) -> None:
    ids = factories.seed(engine, 250, now=clock())
    watching = LeaseWatchingSender(sender, engine)
    dispatcher = Dispatcher(
        engine,
        settings.model_copy(update={"batch_size": 100}),
        watching,  # type: ignore[arg-type]
        clock=clock,
        worker_id="worker-a",
    )
    try:
        assert dispatcher.drain() == 250
    finally:
        dispatcher.close()
    assert factories.statuses(engine, ids) == {"sent": 250}
    # while a batch was on the wire, the one before it was recorded already: a crash
    # would leave at most one batch to send again
    assert watching.leased and max(watching.leased) <= 100
    assert all(entries(engine, i)[-2:] == ["claimed", "sent"] for i in ids[::50])


def test_a_stopped_worker_records_the_batch_it_sent_last(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    ids = factories.seed(engine, 30, now=utcnow())
    assert settings.smtp is not None
    sender = SmtpSender(settings.smtp, pool_size=1, timeout=5)
    dispatcher = Dispatcher(
        engine, settings.model_copy(update={"batch_size": 10}), sender, worker_id="worker-a"
    )
    stop = threading.Event()
    worker = threading.Thread(target=dispatcher.run, args=(stop,))
    worker.start()
    try:
        smtp_server.wait_for(15)  # mid-way: a full batch may be sent and not yet recorded
        stop.set()
        dispatcher.wakeup.poke()
        worker.join(10)
    finally:
        dispatcher.wakeup.close()  # its LISTEN thread on PostgreSQL
        dispatcher.close()
        sender.close()
    assert not worker.is_alive()
    statuses = factories.statuses(engine, ids)
    assert "sending" not in statuses  # nothing left leased: sent and recorded, or never claimed
    assert statuses.get("sent", 0) == len(smtp_server.received)


def test_a_claim_that_fails_does_not_undo_the_record_of_the_batch_sent_before(
    engine: Engine,
    settings: Settings,
    sender: SmtpSender,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from courrier.engine import dispatcher as module

    factories.seed(engine, 20, now=clock())
    dispatcher = make_dispatcher(engine, settings, sender, clock, batch_size=10)
    try:
        assert dispatcher.step() == 10  # sent; recorded with the next claim
        first = [m.id for m in dispatcher._unrecorded.claimed]  # type: ignore[union-attr]

        def failing(*_args: object, **_kwargs: object) -> None:
            raise RuntimeError("a check of the next batch failed")

        monkeypatch.setattr(module, "withdraw_stale", failing)
        with pytest.raises(RuntimeError):
            dispatcher.step()
    finally:
        dispatcher.close()
    assert factories.statuses(engine, first) == {"sent": 10}


def send_then_outlive_the_leases(
    dispatcher: Dispatcher, clock: ManualClock, smtp_server: SmtpServer, count: int
) -> None:
    """Send ``count`` mails, then let two leases' time pass: nothing may be left to take over."""
    try:
        assert dispatcher.drain() == count
        smtp_server.wait_for(count)
        for _ in range(2):
            clock.advance(timedelta(seconds=dispatcher.settings.lease_seconds + 1))
            assert dispatcher.drain() == 0
    finally:
        dispatcher.close()


def test_a_message_whose_record_keeps_failing_is_recorded_without_it_and_never_sent_again(
    engine: Engine,
    settings: Settings,
    sender: SmtpSender,
    clock: ManualClock,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What follows from one message's send (here, its address health) cannot be written:
    the rest of its batch is recorded as usual, and that one as sent with an entry saying
    what is missing, instead of being left leased and sent again at every lease expiry."""
    from courrier.engine import dispatcher as module

    ids = factories.seed(engine, 30, now=clock())
    poisoned = ids[3]
    note = module.health.note_send_results

    def note_unless_poisoned(conn: Any, results: Any, now: Any) -> Any:
        if poisoned in {r.message.id for r in results}:
            raise RuntimeError("this message's record fails every time")
        return note(conn, results, now)

    monkeypatch.setattr(module.health, "note_send_results", note_unless_poisoned)
    send_then_outlive_the_leases(
        make_dispatcher(engine, settings, sender, clock, batch_size=10), clock, smtp_server, 30
    )
    assert factories.statuses(engine, ids) == {"sent": 30}
    assert len(smtp_server.received) == 30
    assert entries(engine, poisoned)[-2:] == ["sent", "partly_recorded"]
    assert "address health, follow-ups and webhooks" in str(last_entry(engine, poisoned)["reason"])
    assert entries(engine, ids[4])[-1] == "sent"


def test_a_mail_whose_attempt_cannot_be_written_is_recorded_as_sent_and_not_sent_again(
    engine: Engine,
    settings: Settings,
    sender: SmtpSender,
    clock: ManualClock,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not even the attempt's own timeline entry can be written for one message: it is
    recorded as sent, bare, rather than left leased and sent at every lease expiry."""
    from courrier.engine import dispatcher as module

    ids = factories.seed(engine, 10, now=clock())
    poisoned = ids[3]
    record = module.timeline.record

    def record_unless_poisoned(conn: Any, found: Any) -> Any:
        if any(e["message_id"] == poisoned and e["entry"] == "sent" for e in found):
            raise ValueError("this entry cannot be written")
        return record(conn, found)

    monkeypatch.setattr(module.timeline, "record", record_unless_poisoned)
    send_then_outlive_the_leases(
        make_dispatcher(engine, settings, sender, clock, batch_size=10), clock, smtp_server, 10
    )
    assert len(smtp_server.received) == 10
    assert factories.statuses(engine, ids) == {"sent": 10}
    assert entries(engine, poisoned)[-1] == "partly_recorded"
    assert "without the server's reply" in str(last_entry(engine, poisoned)["reason"])


def test_the_last_batch_is_recorded_once_the_database_answers_again(
    engine: Engine,
    settings: Settings,
    sender: SmtpSender,
    clock: ManualClock,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database refuses five tries to record a small batch (more than one round of
    pauses): the step fails, the batch is kept, and the next step records it."""
    from sqlalchemy.exc import OperationalError

    from courrier.engine import dispatcher as module

    monkeypatch.setattr(module, "RECORD_PAUSES", (0.0, 0.0, 0.0))
    ids = factories.seed(engine, 5, now=clock())
    write = module.Dispatcher._write
    tries = 0

    def failing_five_times(self: Dispatcher, *args: Any) -> Any:
        nonlocal tries
        tries += 1
        if tries <= 5:
            raise OperationalError("COMMIT", {}, Exception("the server is restarting"))
        return write(self, *args)

    monkeypatch.setattr(module.Dispatcher, "_write", failing_five_times)
    dispatcher = make_dispatcher(engine, settings, sender, clock, batch_size=10)
    try:
        with pytest.raises(OperationalError):
            dispatcher.step()
        while dispatcher.step() or dispatcher._unrecorded is not None:  # as run() goes on
            pass
    finally:
        dispatcher.close()
    assert factories.statuses(engine, ids) == {"sent": 5}
    assert len(smtp_server.received) == 5
