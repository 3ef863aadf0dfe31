"""Courrier as deployed: intake in this process, sending in separate ``courrier worker`` processes.

The sequential path (:mod:`bench.courrier_path`) plans everything, then sends
everything, in one process. Here the workers (``python -m
courrier.engine.worker``, the production entry point) run beside the intake
from the start, so planning and sending overlap on the machine's cores, as
with ``courrier api`` and ``courrier worker``. The clock runs from the first
``accept_many`` until the database holds N messages ``sent``; then the
workers get SIGTERM. Sub-stages inside the workers are not instrumented.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from bench.courrier_path import (
    CourrierOptions,
    booking_event,
    message_statuses,
    seeded_database,
    server_note,
)
from bench.results import ScenarioResult, StageClock, cpu_seconds, peak_rss_mib, postgres_cpu
from bench.workload import Booking, Venue
from courrier.engine.intake import EventInput, Intake
from courrier.heap import settle_heap
from courrier.store.db import create_db_engine
from courrier.store.schema import WAITING_INDEXES, messages
from courrier.store.tenants import Tenant

READY_TIMEOUT = 30.0


def worker_environment(url: str, port: int, options: CourrierOptions) -> dict[str, str]:
    """The ``COURRIER_*`` variables of a worker sending to the sink."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURRIER_")}
    env.update(
        COURRIER_DATABASE_URL=url,
        COURRIER_SMTP_URL=f"smtp://127.0.0.1:{port}",
        COURRIER_SECRET_KEY="bench-secret",
    )
    if options.pool_size:
        env["COURRIER_SMTP_POOL_SIZE"] = str(options.pool_size)
    if options.batch_size:
        env["COURRIER_BATCH_SIZE"] = str(options.batch_size)
    return env


def start_workers(url: str, port: int, options: CourrierOptions) -> list[subprocess.Popen[str]]:
    """Start ``options.workers`` worker processes and wait until each says it is ready."""
    env = worker_environment(url, port, options)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "courrier.engine.worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(options.workers)
    ]
    deadline = time.monotonic() + READY_TIMEOUT
    for worker in workers:
        assert worker.stderr is not None
        while time.monotonic() < deadline:
            line = worker.stderr.readline()
            if not line:
                raise RuntimeError(f"a courrier worker exited at start ({worker.wait()})")
            if "ready" in line:
                break
    return workers


def stop_workers(workers: Sequence[subprocess.Popen[Any]]) -> None:
    """SIGTERM every worker (or any courrier process) and wait for it to exit."""
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        if worker.stderr is not None:
            worker.stderr.close()


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a running process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: how often the wait for the last messages looks whether any is still waiting: the time taken
#: is late by at most this
SENT_POLL = 0.005

#: one look at each waiting status's partial index (the status written out, so SQLite and
#: PostgreSQL's generic plans know the index applies): a few microseconds however many are sent
_WAITING = [
    text(f"SELECT 1 FROM messages WHERE status = '{s}' LIMIT 1")
    for s, _ in WAITING_INDEXES.values()
]


def sent_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).where(messages.c.status == "sent")).scalar_one()
        )


def all_sent(engine: Engine, expected: int) -> bool:
    """Whether ``expected`` messages are sent; counted only once none is waiting.

    Counting the sent rows at every poll made the server read the whole
    table every few milliseconds while the workers sent the last batches
    (with 2 intake processes and one worker: a quarter of the server's time).
    """
    with engine.connect() as conn:
        if any(conn.execute(look).first() is not None for look in _WAITING):
            return False
    return sent_count(engine) >= expected


def run_courrier_with_workers(
    port: int, bookings: list[Booking], options: CourrierOptions
) -> ScenarioResult:
    """Plan in this process while worker processes send; timed until all are sent."""
    with seeded_database(options, bookings) as (url, engine, tenant):
        workers = start_workers(url, port, options)
        try:
            before = sum(process_cpu(w.pid) for w in workers)
            result = _overlapped(engine, url, tenant, bookings, options)
            workers_cpu = sum(process_cpu(w.pid) for w in workers) - before
        finally:
            stop_workers(workers)
        result.cpu_seconds += workers_cpu
        result.stage_cpu["worker processes"] = workers_cpu
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        result.checks["worker_peak_rss_mib"] = children.ru_maxrss / 1024
        result.checks["statuses"] = message_statuses(engine)
    return result


def _overlapped(
    engine: Engine, url: str, tenant: Tenant, bookings: list[Booking], options: CourrierOptions
) -> ScenarioResult:
    venue, now = Venue(), datetime.now(UTC)
    events = [booking_event(b, venue, now) for b in bookings]
    chunks = [events[i : i + options.chunk] for i in range(0, len(events), options.chunk)]
    engine.dispose()  # no pooled connection is inherited by the intake processes
    go = multiprocessing.get_context("fork").Event()
    others = [
        multiprocessing.get_context("fork").Process(
            target=_intake_process, args=(url, tenant, chunks[k :: options.intakes], go)
        )
        for k in range(1, options.intakes)
    ]
    for process in others:
        process.start()
    intake = Intake(engine)
    settle_heap()  # as `courrier api` does once started
    clock = StageClock()
    baseline = peak_rss_mib()
    children_before = _children_cpu()
    server_started = postgres_cpu()
    cpu_started = cpu_seconds()
    started = time.perf_counter()
    go.set()
    with clock.stage("plan"):
        for chunk in chunks[:: options.intakes]:
            intake.accept_many(tenant, chunk)
        for process in others:
            process.join()
            if process.exitcode != 0:
                raise RuntimeError(f"an intake process failed ({process.exitcode})")
    with clock.stage("wait until all sent"):
        while not all_sent(engine, len(bookings)):
            time.sleep(SENT_POLL)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    server_cpu = postgres_cpu() - server_started
    if others:
        clock.cpu["other intake processes"] = _children_cpu() - children_before
        cpu += clock.cpu["other intake processes"]
    database = "SQLite" if options.database == "sqlite" else "PostgreSQL"
    intakes = "intake" if options.intakes == 1 else f"{options.intakes} intake processes"
    return ScenarioResult(
        name=f"courrier-{options.database}-workers",
        label=(
            f"Courrier, durable, {database}, {intakes} + {options.workers} worker process(es),"
            f" batches of {options.chunk}"
        ),
        messages=len(bookings),
        seconds=seconds,
        cpu_seconds=cpu,
        stages=clock.totals,
        stage_cpu=clock.cpu,
        baseline_rss_mib=baseline,
        peak_rss_mib=peak_rss_mib(),
        checks={"workers": options.workers, "chunk": options.chunk, "intakes": options.intakes},
        notes=[
            "CPU ms/msg adds the workers' CPU while the clock ran (from /proc/PID/stat)"
            + (" and the other intake processes' (getrusage of children)" if others else ""),
            "intake's commits wake the workers: NOTIFY on PostgreSQL, the file's data_version on SQLite",
            *([server_note(server_cpu, len(bookings))] if options.database == "postgres" else []),
        ],
    )


def _intake_process(url: str, tenant: Tenant, chunks: list[list[EventInput]], go: Any) -> None:
    """In a forked intake process: accept these chunks once the clock starts."""
    engine = create_db_engine(url)
    intake = Intake(engine)
    settle_heap()
    go.wait()
    for chunk in chunks:
        intake.accept_many(tenant, chunk)
    engine.dispose()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
