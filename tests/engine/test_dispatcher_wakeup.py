"""Waking the dispatcher: an immediate message leaves within a second without tight polling."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine, make_url

from courrier.channels.email import SmtpSender
from courrier.clock import utcnow
from courrier.engine.dispatcher import Dispatcher
from courrier.engine.wakeup import Wakeup, notify_due
from courrier.settings import Settings
from tests.support import factories
from tests.support.smtp import SmtpServer


@pytest.fixture
def running(engine: Engine, settings: Settings) -> Iterator[tuple[Dispatcher, Wakeup]]:
    """A dispatcher looping in a thread, polling only every 30 s, on the real clock."""
    assert settings.smtp is not None
    sender = SmtpSender(settings.smtp, pool_size=2, timeout=5)
    wakeup = Wakeup()
    dispatcher = Dispatcher(
        engine, settings.model_copy(update={"poll_seconds": 30.0}), sender, wakeup=wakeup
    )
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,))
    thread.start()
    time.sleep(0.3)  # let it find nothing to do and go to sleep
    yield dispatcher, wakeup
    stop.set()
    wakeup.poke()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the dispatcher did not stop"
    wakeup.close()
    dispatcher.close()
    sender.close()


def assert_sent_within_a_second(smtp_server: SmtpServer, started: float) -> None:
    """One mail reached the server less than a second after ``started`` (a monotonic time)."""
    smtp_server.wait_for(1, timeout=2.0)
    assert time.monotonic() - started < 1.0


def test_wait_returns_false_after_its_timeout_and_true_when_poked() -> None:
    wakeup = Wakeup()
    started = time.monotonic()
    assert wakeup.wait(0.1) is False
    assert time.monotonic() - started >= 0.1
    threading.Timer(0.05, wakeup.poke).start()
    assert wakeup.wait(5.0) is True


def test_a_poke_after_commit_sends_an_immediate_message_within_a_second(
    engine: Engine, running: tuple[Dispatcher, Wakeup], smtp_server: SmtpServer
) -> None:
    _, wakeup = running
    factories.seed(engine, 1, now=utcnow())
    started = time.monotonic()  # from the commit, as intake does it
    wakeup.poke()
    assert_sent_within_a_second(smtp_server, started)


@pytest.mark.postgres_only
def test_notify_in_the_intake_transaction_wakes_a_listening_worker(
    engine: Engine, running: tuple[Dispatcher, Wakeup], smtp_server: SmtpServer
) -> None:
    with engine.begin() as conn:
        tenant = factories.insert_tenant(conn, now=utcnow())
        factories.insert_messages(conn, tenant, 1, now=utcnow())
        notify_due(conn)
    started = time.monotonic()  # the notification leaves at the commit
    assert_sent_within_a_second(smtp_server, started)


@pytest.mark.postgres_only
def test_a_notify_reaches_a_wakeup_in_another_connection(engine: Engine) -> None:
    wakeup = Wakeup()
    wakeup.listen(engine)
    try:
        wakeup.wait(0)  # the listener pokes once when it starts, for what was missed
        with engine.begin() as conn:
            notify_due(conn)
        assert wakeup.wait(2.0) is True
    finally:
        wakeup.close()


@pytest.mark.sqlite_only
def test_a_commit_by_another_connection_wakes_a_dispatcher_on_sqlite(
    engine: Engine, running: tuple[Dispatcher, Wakeup], smtp_server: SmtpServer
) -> None:
    """No poke and no NOTIFY: the watcher sees the file change (as from another process)."""
    factories.seed(engine, 1, now=utcnow())
    assert_sent_within_a_second(smtp_server, time.monotonic())


@pytest.mark.sqlite_only
def test_a_watching_dispatcher_on_sqlite_stays_asleep_once_the_queue_is_empty(
    engine: Engine, running: tuple[Dispatcher, Wakeup], smtp_server: SmtpServer
) -> None:
    """Its own commits wake it once at most: an empty look writes nothing that would again."""
    dispatcher, _ = running
    steps: list[float] = []
    step = dispatcher.step

    def counted() -> int:
        steps.append(time.monotonic())
        return step()

    dispatcher.step = counted  # type: ignore[method-assign]
    factories.seed(engine, 3, now=utcnow())
    smtp_server.wait_for(3, timeout=2.0)
    time.sleep(0.3)  # the record of the last batch, and the look it causes
    settled = len(steps)
    time.sleep(1.0)  # fifty watches of the file
    assert settled >= 1
    assert len(steps) == settled


@pytest.mark.sqlite_only
def test_a_dispatcher_closed_stops_the_watch_of_its_own_wakeup(
    engine: Engine, settings: Settings
) -> None:
    assert settings.smtp is not None
    sender = SmtpSender(settings.smtp, pool_size=1, timeout=5)
    dispatcher = Dispatcher(engine, settings, sender)
    before = _watching()  # a test that failed may have left its own
    stop = threading.Event()
    stop.set()  # run() starts listening, then returns at once
    dispatcher.run(stop)
    assert _watching() == before + 1
    dispatcher.close()
    sender.close()
    assert _watching() == before


def _watching() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "courrier-watch" and t.is_alive())


@pytest.mark.sqlite_only
def test_a_sqlite_database_in_memory_is_not_watched() -> None:
    from courrier.store.db import create_db_engine

    memory = create_db_engine("sqlite://")
    wakeup = Wakeup()
    before = _watching()
    try:
        wakeup.listen(memory)
        assert _watching() == before
    finally:
        wakeup.close()
        memory.dispose()


@pytest.mark.sqlite_only
def test_notify_due_does_nothing_on_sqlite(engine: Engine) -> None:
    with engine.begin() as conn:
        notify_due(conn)  # no NOTIFY statement: SQLite would reject it


def test_a_message_planned_for_later_leaves_at_its_due_time_without_a_poke(
    engine: Engine, settings: Settings, smtp_server: SmtpServer
) -> None:
    """The loop sleeps until the next due time, not the (here 30 s) poll interval."""
    assert settings.smtp is not None
    factories.seed(
        engine, 1, now=utcnow(), status="planned", due_at=utcnow() + timedelta(seconds=1)
    )
    sender = SmtpSender(settings.smtp, pool_size=1, timeout=5)
    dispatcher = Dispatcher(engine, settings.model_copy(update={"poll_seconds": 30.0}), sender)
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,))
    started = time.monotonic()
    thread.start()
    try:
        smtp_server.wait_for(1, timeout=3.0)
    finally:
        stop.set()
        dispatcher.wakeup.poke()
        thread.join(timeout=10)
        dispatcher.close()
        sender.close()
    assert 0.8 <= time.monotonic() - started < 3.0


@pytest.mark.sqlite_only
def test_a_dispatcher_with_nothing_due_does_not_queue_for_the_sqlite_write_lock(
    engine: Engine, database_url: str, settings: Settings, smtp_server: SmtpServer
) -> None:
    """Woken while another process writes (intake's batch) and with nothing to send, it looks
    and goes back to sleep at once instead of waiting its turn at the lock to find nothing."""
    assert settings.smtp is not None
    later = utcnow() + timedelta(hours=1)
    factories.seed(engine, 1, now=utcnow(), status="planned", due_at=later)
    sender = SmtpSender(settings.smtp, pool_size=1, timeout=5)
    dispatcher = Dispatcher(engine, settings, sender)
    writer = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process's transaction holds the write lock
        started = time.monotonic()
        assert dispatcher.step() == 0
        assert time.monotonic() - started < 1.0
        writer.rollback()
        factories.seed(engine, 1, now=utcnow())  # due now: the next step takes it
        assert dispatcher.step() == 1
        smtp_server.wait_for(1, timeout=2.0)
    finally:
        writer.close()
        dispatcher.close()
        sender.close()
