"""Crash safety: a worker process killed with SIGKILL mid-batch loses nothing."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from courrier.clock import utcnow
from courrier.store.schema import message_events, messages
from tests.support import factories
from tests.support.smtp import SmtpServer
from tests.support.workers import WorkerProcess, wait_until_all

BATCH = 100


def freeze_mid_batch(engine: Engine, worker: WorkerProcess) -> int:
    """SIGSTOP the worker at a moment it holds a claimed batch; how many messages it holds.

    Caught between two batches, it is let go for a moment and stopped again.
    """
    while True:
        os.kill(worker.process.pid, signal.SIGSTOP)
        with engine.connect() as conn:
            leased = conn.execute(
                select(func.count()).where(messages.c.status == "sending")
            ).scalar_one()
        if leased:
            return int(leased)
        os.kill(worker.process.pid, signal.SIGCONT)
        time.sleep(0.01)


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_nothing_and_resends_at_most_one_batch(
    engine: Engine, database_url: str, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    ids = factories.seed(engine, 1000, now=utcnow())
    worker = {
        "database_url": database_url,
        "smtp_url": smtp_server.url,
        "lease_seconds": "2",
        "batch_size": str(BATCH),
        "poll_seconds": "0.2",
    }
    first = WorkerProcess(tmp_path, "first", worker)
    try:
        smtp_server.wait_for(250, timeout=20)
        leased = freeze_mid_batch(engine, first)
    finally:
        first.process.kill()  # what the frozen worker held is what the kill leaves behind
        first.process.wait()
    assert 0 < leased <= BATCH

    second = WorkerProcess(tmp_path, "second", worker)
    try:
        wait_until_all(engine, "sent", len(ids), timeout=20)
    finally:
        stopped = second.stop()  # also when the wait fails: no worker outlives the test
    assert stopped == 0

    with engine.connect() as conn:
        planned = set(conn.execute(select(messages.c.message_id_header)).scalars())
        taken_over = conn.execute(
            select(func.count()).where(message_events.c.entry == "taken_over")
        ).scalar_one()
    received = Counter(mail.message["Message-ID"] for mail in smtp_server.received)
    assert set(received) == planned  # every message arrived, nothing else did
    duplicates = sum(n - 1 for n in received.values())
    assert duplicates <= BATCH
    assert taken_over == leased  # the second worker took over exactly what the first held
