"""Worker processes: clean stop on SIGTERM, and two workers sharing one queue."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from courrier.clock import utcnow
from courrier.engine.wakeup import notify_due
from courrier.store import timeline
from courrier.store.schema import captured_mails, message_events, messages
from tests.channels.servers import CountingHandler, serve
from tests.support import factories
from tests.support.services import free_port
from tests.support.smtp import SmtpServer
from tests.support.workers import WorkerProcess, wait_until_all


@pytest.mark.slow
def test_sigterm_finishes_the_send_in_flight_and_releases_the_rest(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    slow = serve(CountingHandler(delay=0.05))
    try:
        ids = factories.seed(engine, 60, now=utcnow())
        worker = WorkerProcess(
            tmp_path,
            "a",
            {
                "database_url": database_url,
                "smtp_url": slow.url,
                "smtp_pool_size": "1",
                "batch_size": "60",
            },
        )
        slow.wait_for(5, timeout=15)
        assert worker.stop() == 0
        received = len(slow.received)
    finally:
        slow.stop()
    counts = factories.statuses(engine, ids)
    assert counts.get("sending", 0) == 0
    assert counts["sent"] == received  # what was in flight finished and was recorded
    assert counts["due"] == len(ids) - received
    with engine.connect() as conn:
        released = conn.execute(select(messages).where(messages.c.status == "due").limit(1)).one()
        entries = [e["entry"] for e in timeline.timeline_of(conn, released.id)]
    assert (released.attempts, released.lease_owner) == (0, None)
    assert entries == ["claimed", "released"]
    assert "releasing the rest" in worker.output()


def share_500_between_two_workers(
    engine: Engine, smtp_server: SmtpServer, tmp_path: Path, settings: dict[str, str]
) -> None:
    """Two worker processes, then 500 due messages: all sent once, each worker a share."""
    workers = [WorkerProcess(tmp_path, name, settings) for name in ("a", "b")]
    for worker in workers:
        worker.wait_ready()
    with engine.begin() as conn:
        tenant = factories.insert_tenant(conn, now=utcnow())
        factories.insert_messages(conn, tenant, 500, now=utcnow())
        notify_due(conn)
    wait_until_all(engine, "sent", 500, timeout=20)
    for worker in workers:
        assert worker.stop() == 0
    received = Counter(mail.message["Message-ID"] for mail in smtp_server.received)
    assert len(received) == 500
    assert max(received.values()) == 1
    with engine.connect() as conn:
        claims = Counter(
            data["worker"]
            for data in conn.execute(
                select(message_events.c.data).where(message_events.c.entry == "claimed")
            ).scalars()
        )
    assert len(claims) == 2, "both workers should have claimed a share"
    assert sum(claims.values()) == 500


@pytest.mark.slow
@pytest.mark.postgres_only
def test_two_workers_share_a_batch_without_sending_any_twice(
    engine: Engine, database_url: str, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """Woken by NOTIFY, claiming with SKIP LOCKED."""
    settings = {"database_url": database_url, "smtp_url": smtp_server.url, "batch_size": "25"}
    share_500_between_two_workers(engine, smtp_server, tmp_path, settings)


@pytest.mark.slow
@pytest.mark.sqlite_only
def test_two_workers_on_one_sqlite_file_send_nothing_twice(
    engine: Engine, database_url: str, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """Polling, claims serialised by BEGIN IMMEDIATE."""
    settings = {
        "database_url": database_url,
        "smtp_url": smtp_server.url,
        "batch_size": "25",
        "poll_seconds": "0.1",
    }
    share_500_between_two_workers(engine, smtp_server, tmp_path, settings)


@pytest.mark.sqlite_only
def test_a_worker_process_on_sqlite_sends_what_another_process_commits_within_a_second(
    engine: Engine, database_url: str, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """``courrier api`` and ``courrier worker`` on one file: no NOTIFY, no 30 s poll wait."""
    worker = WorkerProcess(
        tmp_path,
        "watching",
        {"database_url": database_url, "smtp_url": smtp_server.url, "poll_seconds": "30"},
    )
    try:
        worker.wait_ready()
        time.sleep(0.3)  # past its first look at the empty queue: asleep
        factories.seed(engine, 1, now=utcnow())
        started = time.monotonic()
        smtp_server.wait_for(1, timeout=5.0)
        assert time.monotonic() - started < 1.0
    finally:
        assert worker.stop() == 0


@pytest.mark.slow
def test_a_worker_without_smtp_server_keeps_mail_in_the_local_capture(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    ids = factories.seed(engine, 3, now=utcnow())
    worker = WorkerProcess(tmp_path, "capture", {"database_url": database_url})
    try:
        wait_until_all(engine, "sent", len(ids), timeout=20)
    finally:
        assert worker.stop() == 0
    with engine.connect() as conn:
        kept = conn.execute(
            select(captured_mails.c.tenant_id, captured_mails.c.message_id_header)
        ).all()
        planned = set(conn.execute(select(messages.c.message_id_header)).scalars())
    assert {header for _, header in kept} == planned
    assert len(kept) == 3
    assert {tenant for tenant, _ in kept} == {factories.message(engine, ids[0])["tenant_id"]}


def test_a_worker_that_cannot_reach_its_smtp_server_says_so_in_one_line(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    worker = WorkerProcess(
        tmp_path,
        "unreachable",
        {"database_url": database_url, "smtp_url": f"smtp://127.0.0.1:{port}"},
    )
    assert worker.process.wait(20) == 2
    assert (
        f"courrier worker: cannot reach the SMTP server at 127.0.0.1:{port}: connection refused"
        in worker.output().splitlines()
    )


def test_a_worker_serves_its_own_send_counters_to_prometheus(
    engine: Engine, database_url: str, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    ids = factories.seed(engine, 2, now=utcnow())
    port = free_port()
    worker = WorkerProcess(
        tmp_path,
        "metrics",
        {"database_url": database_url, "smtp_url": smtp_server.url, "metrics_port": str(port)},
    )
    try:
        wait_until_all(engine, "sent", len(ids), timeout=20)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    finally:
        assert worker.stop() == 0
    assert 'courrier_messages_sent_total{channel="email"} 2.0' in text.splitlines()


def test_a_taken_metrics_port_is_one_line(database_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = WorkerProcess(
            tmp_path, "taken", {"database_url": database_url, "metrics_port": str(port)}
        )
        assert worker.process.wait(20) == 2
    [line] = [line for line in worker.output().splitlines() if "COURRIER_METRICS_PORT" in line]
    assert line.startswith(f"courrier worker: cannot serve metrics on 127.0.0.1:{port}")
