"""Courrier's own path, durable end to end: plan with Intake, send with the Dispatcher.

Untimed setup: a fresh database (a temporary SQLite file, or a PostgreSQL
database created for the run and dropped after), migrated, with one tenant
and one contact per booking. Timed: ``Intake.accept_many`` of the
``booking.created`` events in chunks (plan), then ``Dispatcher.drain``
until nothing is left (send: the worker's loop, each batch recorded in the
transaction that claims the next), with ``SmtpSender`` to the sink over
``settings.smtp_pool_size`` connections. Then every message must be ``sent``.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine, make_url

from bench.results import ScenarioResult, cpu_seconds, peak_rss_mib, postgres_cpu
from bench.stages import AllThreadsProfile, ThreadSafeStageClock, instrumented
from bench.workload import VENUE_ZONE, Booking, Venue
from courrier.channels.email import SmtpSender
from courrier.channels.smtp_group import Mail, Result
from courrier.channels.smtp_transaction import Accepted
from courrier.engine.dispatcher import Dispatcher
from courrier.engine.intake import EventInput, Intake
from courrier.heap import settle_heap
from courrier.settings import Settings
from courrier.store.contacts import ContactData, upsert_contact
from courrier.store.db import create_db_engine, normalise_url
from courrier.store.migrate import migrate
from courrier.store.schema import messages
from courrier.store.tenants import Tenant, create_tenant

#: (module, attribute, stage) wrapped to time the stages' parts from the outside
STAGES = [
    ("courrier.engine.composer", "MessageComposer.compose", "plan: compose"),
    ("courrier.render.templates", "TemplateRenderer.render", "plan: templates"),
    ("courrier.engine.planner", "insert_messages", "plan: insert messages"),
    ("courrier.engine.intake", "Intake._store_subjects_and_events", "plan: subjects, events"),
    ("courrier.engine.dispatcher", "Dispatcher._record_and_claim", "record + claim transactions"),
    ("courrier.engine.dispatcher", "Dispatcher._claim_in", "claim"),
    ("courrier.engine.outgoing", "Outgoing.build", "build"),
    ("courrier.engine.dispatcher", "Dispatcher._write", "record"),
]


class MeasuredSender:
    """Stands in for the dispatcher's sender: times each ``deliver`` or ``deliver_many``
    and counts the bytes."""

    def __init__(self, sender: Any, clock: ThreadSafeStageClock) -> None:
        self._sender = sender
        self._clock = clock
        self._lock = threading.Lock()
        self.bytes_sent = 0

    def deliver(self, envelope_from: str, recipients: Sequence[str], data: bytes) -> Accepted:
        with self._clock.timed_call("smtp"):
            accepted: Accepted = self._sender.deliver(envelope_from, recipients, data)
        with self._lock:
            self.bytes_sent += len(data)
        return accepted

    def deliver_many(self, mails: Sequence[Mail], **options: Any) -> list[Result]:
        """A pool thread's share of a batch, pipelined on one connection (timed as one call)."""
        with self._clock.timed_call("smtp"):
            results: list[Result] = self._sender.deliver_many(mails, **options)
        with self._lock:
            self.bytes_sent += sum(len(data) for _, _, data in mails)
        return results

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sender, name)


@dataclass(frozen=True)
class CourrierOptions:
    """What to vary between runs: database, chunk of events per transaction, pool, batch."""

    database: str  # "sqlite" or "postgres"
    pg_admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    chunk: int = 500
    pool_size: int | None = None  # None: the settings' default
    batch_size: int | None = None
    workers: int = 1  # worker processes, for the run with intake and workers side by side
    intakes: int = 1  # intake processes in that run, each accepting a share of the events
    profile_to: Path | None = None


@contextmanager
def bench_database(options: CourrierOptions) -> Iterator[str]:
    """A database URL: a temporary SQLite file, or a PostgreSQL database dropped after."""
    if options.database == "sqlite":
        with tempfile.TemporaryDirectory(prefix="courrier-bench-") as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    name = f"courrier_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(options.pg_admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(normalise_url(options.pg_admin_url)).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def booking_event(booking: Booking, venue: Venue, occurred_at: datetime) -> EventInput:
    """The ``booking.created`` event an integrator would post for ``booking``."""
    return EventInput(
        type="booking.created",
        idempotency_key=f"bench-{booking.reference}",
        occurred_at=occurred_at,
        subject={
            "type": "booking",
            "id": booking.reference,
            "start": booking.start.isoformat(),
            "end": booking.end.isoformat(),
            "timezone": venue.timezone,
            "booker": booking.member_id,
            "participants": [],
            "resource": {"id": f"r-{booking.number % 4}", "name": booking.resource},
            "status": "confirmed",
            "paid": True,
            "price": booking.price,
            "instructor": booking.instructor,
        },
    )


def seed(engine: Engine, venue: Venue, bookings: list[Booking], now: datetime) -> Tenant:
    """Create the tenant and one contact per booking (not timed); returns the tenant."""
    with engine.begin() as conn:
        tenant = create_tenant(
            conn,
            "bench",
            from_email=venue.from_email,
            from_name=venue.name,
            reply_to=venue.reply_to,
            timezone=VENUE_ZONE,
            now=now,
        )
        for booking in bookings:
            data = ContactData(name=booking.name, email=booking.email, locale="en")
            upsert_contact(conn, tenant.id, booking.member_id, data, now=now)
    return tenant


def message_statuses(engine: Engine) -> dict[str, int]:
    """How many messages are in each status."""
    query = select(messages.c.status, func.count()).group_by(messages.c.status)
    with engine.connect() as conn:
        return {status: count for status, count in conn.execute(query)}


@contextmanager
def seeded_database(
    options: CourrierOptions, bookings: list[Booking], revision: str = "head"
) -> Iterator[tuple[str, Engine, Tenant]]:
    """A fresh database for one run, migrated (to ``revision``), with the tenant and a contact
    per booking (untimed): its URL, an engine on it (disposed after) and the tenant."""
    with bench_database(options) as url:
        engine = create_db_engine(url)
        try:
            migrate(engine, revision)
            yield url, engine, seed(engine, Venue(), bookings, datetime.now(UTC))
        finally:
            engine.dispose()


def run_courrier(port: int, bookings: list[Booking], options: CourrierOptions) -> ScenarioResult:
    """Plan and send ``bookings`` through Courrier into the sink on ``port``."""
    with seeded_database(options, bookings) as (url, engine, tenant):
        result = _timed_run(engine, url, port, tenant, bookings, options)
        result.checks["statuses"] = message_statuses(engine)
    return result


def bench_settings(url: str, port: int, options: CourrierOptions) -> Settings:
    """Courrier's settings for the run: the database, the sink, the chosen pool and batch."""
    overrides: dict[str, Any] = {}
    if options.pool_size:
        overrides["smtp_pool_size"] = options.pool_size
    if options.batch_size:
        overrides["batch_size"] = options.batch_size
    return Settings(
        _env_file=None,
        database_url=url,
        smtp_url=f"smtp://127.0.0.1:{port}",
        secret_key="bench-secret",
        **overrides,
    )


def _timed_run(
    engine: Engine,
    url: str,
    port: int,
    tenant: Tenant,
    bookings: list[Booking],
    options: CourrierOptions,
) -> ScenarioResult:
    """Plan in chunks, then dispatch until the queue is empty, under the stage timers."""
    settings = bench_settings(url, port, options)
    venue, now = Venue(), datetime.now(UTC)
    events = [booking_event(b, venue, now) for b in bookings]
    intake = Intake(engine)
    target = settings.smtp
    assert target is not None
    clock = ThreadSafeStageClock()
    smtp = SmtpSender(target, pool_size=settings.smtp_pool_size, timeout=settings.smtp_timeout)
    sender = MeasuredSender(smtp, clock)
    dispatcher = Dispatcher(engine, settings, cast(SmtpSender, sender))
    profiler = AllThreadsProfile() if options.profile_to else None
    result = ScenarioResult(
        name=f"courrier-{options.database}",
        label=f"Courrier, durable, {'SQLite' if options.database == 'sqlite' else 'PostgreSQL'}",
        messages=len(bookings),
        seconds=0.0,
        baseline_rss_mib=peak_rss_mib(),
    )
    with instrumented(STAGES, clock) as missing, _maybe(profiler):
        settle_heap()  # as a worker does once started
        server_started = postgres_cpu()
        cpu_started, started = cpu_seconds(), time.perf_counter()
        for first in range(0, len(events), options.chunk):
            with clock.stage("plan"):
                intake.accept_many(tenant, events[first : first + options.chunk])
        with clock.stage("send"):
            dispatcher.drain()
        rounds = clock.calls.get("claim", 0)
        result.seconds = time.perf_counter() - started
        result.cpu_seconds = cpu_seconds() - cpu_started
        server_cpu = postgres_cpu() - server_started
    dispatcher.close()
    smtp.close()
    result.stages, result.stage_cpu = clock.totals, clock.cpu
    result.peak_rss_mib = peak_rss_mib()
    result.mean_bytes = sender.bytes_sent / len(bookings) if bookings else 0.0
    result.checks = {
        "dispatch_rounds": rounds,
        "pool_size": settings.smtp_pool_size,
        "batch_size": settings.batch_size,
        "chunk": options.chunk,
        "calls": dict(clock.calls),
        "profiled": profiler is not None,
    }
    if options.database == "postgres":
        result.notes.append(server_note(server_cpu, len(bookings)))
    if missing:
        result.notes.append(f"not instrumented: {', '.join(missing)}")
    if profiler is not None and options.profile_to is not None:
        options.profile_to.with_suffix(".txt").write_text(profiler.report(options.profile_to))
        result.notes.append(f"profile: {options.profile_to} (pstats) and .txt")
    return result


def server_note(seconds: float, count: int) -> str:
    """The PostgreSQL server's CPU while the clock ran, per message."""
    return (
        f"PostgreSQL's own processes used {seconds / count * 1000:.2f} ms of CPU a message"
        " while the clock ran (from /proc; not in the CPU column)"
    )


@contextmanager
def _maybe(profiler: AllThreadsProfile | None) -> Iterator[None]:
    if profiler is None:
        yield
        return
    with profiler.running():
        yield
