"""The dispatcher: claims due messages in batches, sends them, records what happened.

One batch at a time: a claim leases up to ``batch_size`` messages, a thread
pool as wide as the SMTP pool sends them (each thread a share of the batch
on one connection, pipelined across mails), and every outcome is recorded
(those alike in one statement). While the queue holds more than a batch,
recording a batch and claiming the next are one transaction: half the
transactions, and on SQLite half the turns at the write lock a worker has
to wait for beside a busy intake. Nothing is lost: a crash anywhere leaves
each message either recorded or still leased, never more than one batch
leased at a time, and an expired lease is taken over by the next claim
(at-least-once; the Message-ID, fixed at planning, makes a resend the
same mail).
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from courrier import metrics
from courrier.channels.email import SmtpSender
from courrier.clock import Clock, utcnow
from courrier.domain.kinds import DEFAULT_CATALOGUE
from courrier.domain.status import MessageStatus
from courrier.engine import followups, health
from courrier.engine.attempts import Attempt, attempt_of, decide
from courrier.engine.claimchecks import defer_limited, result_events, withdraw_stale
from courrier.engine.outgoing import Envelope, Outgoing, mail_of
from courrier.engine.results import SendResult
from courrier.engine.wakeup import Wakeup
from courrier.errors import (
    ValidationError,
)
from courrier.settings import Settings
from courrier.store import timeline, webhooks
from courrier.store.db import read_only
from courrier.store.kinds import Catalogues
from courrier.store.queue import (
    ClaimedMessage,
    Outcome,
    claim_due,
    next_wakeup,
    process_prefix,
    record_outcomes,
    renew_lease,
)

__all__ = ["Dispatcher", "mail_of"]

log = logging.getLogger(__name__)
S = MessageStatus
CHANNEL = "email"
#: Pauses between tries to record a batch's outcomes when the database is unreachable.
RECORD_PAUSES = (0.5, 1.0, 2.0)


@dataclass(frozen=True)
class Sent:
    """A batch sent, with each message's attempt, not yet recorded."""

    claimed: Sequence[ClaimedMessage]
    attempts: Sequence[Attempt]


#: the reasons of a ``partly_recorded`` entry: what follows from an attempt could not be
#: written; nor could the attempt itself (only for a mail that left: it must not go again)
PARTLY = (
    "recorded without its address health, follow-ups and webhooks, which failed"
    " (see the worker's log)"
)
BARE = (
    "recorded as sent, without the server's reply, address health, follow-ups and webhooks,"
    " which could not be written (see the worker's log)"
)


def _incomplete(message_id: int, now: datetime, status: str, reason: str) -> timeline.TimelineEntry:
    """The timeline entry of an outcome recorded without all that goes with it."""
    return timeline.TimelineEntry(
        message_id=message_id, at=now, status=status, entry="partly_recorded", reason=reason
    )


def _default_worker_id() -> str:
    return f"{process_prefix()}{secrets.token_hex(3)}"


class Dispatcher:
    """Sends due messages for one worker; :meth:`run` loops until told to stop."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        sender: SmtpSender,
        *,
        clock: Clock = utcnow,
        worker_id: str | None = None,
        wakeup: Wakeup | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.sender = sender
        self.clock = clock
        self.worker_id = worker_id or _default_worker_id()
        self.wakeup = wakeup or Wakeup()
        self._own_wakeup = wakeup is None  # closed with the dispatcher; a given one by its owner
        self._stop = threading.Event()
        self._executor = ThreadPoolExecutor(sender.pool_size, thread_name_prefix="courrier-send")
        self._rng = random.Random()
        self.outgoing = Outgoing(settings)
        self._unrecorded: Sent | None = None  # the batch sent last, recorded with the next claim
        # SQLite lets one writer in at a time: a claim with nothing to record looks first
        self._look_before_claiming = engine.dialect.name == "sqlite"

    # -- one batch ---------------------------------------------------------

    def run_once(self) -> int:
        """Claim one batch of due messages, send them, record outcomes; the number handled."""
        claimed = self._claim()
        if claimed:
            self._record_safely(Sent(claimed, self._send(claimed)))
        return len(claimed)

    def drain(self) -> int:
        """Send what is due until nothing is, as :meth:`run` does under load; how many handled.

        Each batch's outcomes are recorded in the transaction that claims
        the next one; the last batch's on their own.
        """
        handled = 0
        while True:
            count = self.step()
            handled += count
            if self._unrecorded is None:
                return handled

    def step(self) -> int:
        """Record the batch sent last and claim the next in one transaction, then send it.

        A batch that fills ``batch_size`` (more is likely due) stays
        unrecorded until the next step's claim; a smaller one, the last
        for now, is recorded at once. How many messages were claimed.
        """
        pending = self._unrecorded
        try:
            claimed = self._record_and_claim(pending)
        except OperationalError:  # the database: whether the claim committed is unknown
            self._unrecorded = None
            if pending is not None:
                self._record_alone(pending)
            raise
        except Exception:  # raised before the commit: neither the record nor the claim was made
            if pending is None:
                raise
            self._unrecorded = None
            self._record_alone(pending)  # the record's fault, or the claim's: now apart
            claimed = self._claim()
        self._unrecorded = None  # recorded: the transaction committed
        if not claimed:
            return 0
        self._unrecorded = Sent(claimed, self._send(claimed))
        if len(claimed) < self.settings.batch_size or self._stop.is_set():
            # the database failing, it stays for the next step to record with its claim
            self._record_safely(self._unrecorded)
            self._unrecorded = None
        return len(claimed)

    def _record_alone(self, sent: Sent) -> None:
        """Record a batch in a transaction of its own; never raises.

        When the database cannot be written, the batch stays leased: it is
        taken over and sent again (same Message-IDs) once its lease expires.
        """
        try:
            self._record_safely(sent)
        except OperationalError:
            log.exception("could not record a batch sent; it goes again when its lease expires")

    def _record_safely(self, sent: Sent) -> None:
        """Record a batch, and never leave a mail that left unrecorded for a fault of the
        record itself; raises OperationalError when the database cannot be written.

        When the batch's record fails otherwise, each message is recorded
        alone, so one whose address health, follow-ups or webhooks cannot be
        written holds no other back, and that one is recorded without them
        (:meth:`_record_last_resort`). Else its lease would expire
        and the mail go again, and again, at every expiry. What was recorded
        before an OperationalError is not written twice by the next try.
        """
        try:
            self._record(sent.claimed, sent.attempts)
            return
        except OperationalError:
            raise
        except Exception:
            if len(sent.claimed) == 1:
                self._record_last_resort(sent)
                return
            log.exception("could not record a batch sent; recording its messages one by one")
        for message, attempt in zip(sent.claimed, sent.attempts, strict=True):
            self._record_safely(Sent([message], [attempt]))

    def _record_last_resort(self, sent: Sent) -> None:
        """One message whose record failed (called while handling that failure): its outcome
        and timeline without what follows from them, saying so.

        If even that cannot be written, a mail that left is recorded as sent
        and nothing more; one that did not stays leased, to be tried again.
        Raises OperationalError only.
        """
        [message] = sent.claimed
        log.exception("could not record what follows from message %s's attempt", message.id)
        try:
            with self.engine.begin() as conn:
                now = self.clock()
                decided, _ = self._decided(sent, now)
                if self._write(conn, decided, [], now):
                    status = decided[0][0].status.value
                    timeline.record(conn, [_incomplete(message.id, now, status, PARTLY)])
            self._count(sent.attempts)
            return
        except OperationalError:
            raise
        except Exception:
            if sent.attempts[0].kind != "sent":
                log.exception("could not record message %s; it goes again", message.id)
                return
            log.exception("could not record message %s's attempt; recording it as sent", message.id)
        try:
            with self.engine.begin() as conn:
                now = self.clock()
                bare = Outcome(message.id, S.SENT, sent_at=now)
                if record_outcomes(conn, [bare], worker_id=self.worker_id, now=now):
                    timeline.record(conn, [_incomplete(message.id, now, S.SENT.value, BARE)])
        except OperationalError:
            raise
        except Exception:
            log.exception("could not record message %s at all", message.id)
            return
        self._count(sent.attempts)

    def _send(self, claimed: Sequence[ClaimedMessage]) -> list[Attempt]:
        """Send a batch through the pool, renewing its leases while it takes long.

        The mails are built here, one after the other, and only the SMTP
        exchanges run in the pool: building is pure Python, which threads
        cannot run side by side, and building it in the pool made them
        fight over the interpreter lock (about 0.1 ms of CPU a message more).
        Each pool thread takes every ``pool_size``-th mail (so the first,
        most urgent ones leave first on every connection) and sends them on
        one connection, pipelined across mails: one round trip a mail.
        """
        now = self.clock()
        built = [self._build(message, now) for message in claimed]
        attempts: list[Attempt | None] = [b if isinstance(b, Attempt) else None for b in built]
        ready = [k for k, envelope in enumerate(built) if not isinstance(envelope, Attempt)]
        groups = [ready[first :: self.sender.pool_size] for first in range(self.sender.pool_size)]
        groups = [group for group in groups if group]
        futures = [
            self._executor.submit(self._attempt_group, [built[k] for k in group])
            for group in groups
        ]
        renew_every = self.settings.lease_seconds / 3
        while wait(futures, timeout=renew_every).not_done:
            self._renew([message.id for message in claimed])
        for group, future in zip(groups, futures, strict=True):
            for k, attempt in zip(group, future.result(), strict=True):
                attempts[k] = attempt
        return [attempt or Attempt("release") for attempt in attempts]

    def _renew(self, message_ids: list[int]) -> None:
        """Keep the batch's leases alive while a slow server holds it past a third of the lease."""
        lease_until = self.clock() + timedelta(seconds=self.settings.lease_seconds)
        try:
            with self.engine.begin() as conn:
                renew_lease(conn, message_ids, worker_id=self.worker_id, lease_until=lease_until)
        except SQLAlchemyError as exc:  # the sends go on; the next renewal may succeed
            log.warning("could not renew the batch's leases (%s)", exc)

    def _claim(self) -> list[ClaimedMessage]:
        with self.engine.begin() as conn:
            claimed = self._claim_in(conn, self.clock())
        self._note_taken_over(claimed)
        return claimed

    def _claim_in(self, conn: Connection, now: datetime) -> list[ClaimedMessage]:
        """Lease the next batch, record the claims, hold them against the send-time checks."""
        lease_until = now + timedelta(seconds=self.settings.lease_seconds)
        claimed = claim_due(
            conn,
            now=now,
            worker_id=self.worker_id,
            lease_until=lease_until,
            limit=self.settings.batch_size,
            channel=CHANNEL,
        )
        if not claimed:
            return claimed
        shared: dict[int, dict[str, Any]] = {}
        entries = [self._claim_entry(message, now, shared) for message in claimed]
        timeline.record(conn, entries)
        catalogues = Catalogues(conn, DEFAULT_CATALOGUE)  # read once for every check
        claimed = withdraw_stale(conn, claimed, now, self.worker_id, catalogues)
        claimed = defer_limited(conn, claimed, now, self.worker_id, self.settings)
        tenant_ids = {int(message.row["tenant_id"]) for message in claimed}
        self.outgoing.load(conn, tenant_ids, catalogues)
        return claimed

    @staticmethod
    def _note_taken_over(claimed: Sequence[ClaimedMessage]) -> None:
        taken_over = sum(1 for message in claimed if message.taken_over)
        if taken_over:
            metrics.leases_taken_over.inc(taken_over)
            log.warning("took over %d messages whose lease had expired", taken_over)

    def _claim_entry(
        self, message: ClaimedMessage, now: datetime, shared: dict[int, dict[str, Any]]
    ) -> timeline.TimelineEntry:
        """The claim's timeline entry; ``shared`` holds the batch's data dicts by attempt.

        Entries with the same attempt number share one data dict (never
        changed afterwards), so the batch's insert encodes its JSON once
        (store.bulk takes the result again for the very same object).
        """
        data = shared.get(message.attempts)
        if data is None:
            data = shared[message.attempts] = {
                "worker": self.worker_id,
                "attempt": message.attempts,
            }
        if message.taken_over:
            return timeline.TimelineEntry(
                message_id=message.id,
                at=now,
                status=S.SENDING.value,
                entry="taken_over",
                reason=f"lease of {message.previous_owner} expired; claimed again",
                data=data,
            )
        return timeline.TimelineEntry(
            message_id=message.id, at=now, status=S.SENDING.value, entry="claimed", data=data
        )

    def _build(self, message: ClaimedMessage, now: datetime) -> Envelope | Attempt:
        """The envelope of one message, or the permanent failure of a mail that cannot be built."""
        try:
            return self.outgoing.build(message.row, now)
        except ValidationError as exc:
            return Attempt("permanent", f"cannot build the mail: {exc.message}")
        except Exception as exc:
            log.exception("unexpected error building message %s", message.id)
            return Attempt("transient", f"internal error: {exc.__class__.__name__}: {exc}")

    def _attempt_group(self, envelopes: Sequence[Envelope | Attempt]) -> list[Attempt]:
        """Send built messages on one connection (in a pool thread); never raises.

        A mail not offered because the worker is stopping is released.
        """
        if self._stop.is_set():
            return [Attempt("release") for _ in envelopes]
        mails = [(e.sender, e.recipients, e.data) for e in envelopes if isinstance(e, Envelope)]
        started = time.perf_counter()
        try:
            results = self.sender.deliver_many(mails, stop=self._stop.is_set)
        except Exception as exc:
            log.exception("unexpected error sending %d messages", len(mails))
            failed = Attempt("transient", f"internal error: {exc.__class__.__name__}: {exc}")
            return [failed for _ in envelopes]
        finally:
            each = (time.perf_counter() - started) / max(len(mails), 1)
            histogram = metrics.send_seconds.labels(CHANNEL)
            for _ in mails:
                histogram.observe(each)
        return [attempt_of(result) for result in results]

    # -- outcomes ----------------------------------------------------------

    def _record(self, claimed: Sequence[ClaimedMessage], attempts: Sequence[Attempt]) -> None:
        """Write every outcome of the batch in one transaction."""
        self._record_and_claim(Sent(claimed, attempts), claim=False)

    def _record_and_claim(
        self, pending: Sent | None, *, claim: bool = True
    ) -> list[ClaimedMessage]:
        """One transaction: the outcomes of ``pending`` (a batch sent), then the next claim.

        When the database cannot be written, the record is tried again after
        a pause, alone: the next claim waits for the next step (a claim is
        never tried twice, so a commit that failed after all cannot leave a
        second batch leased, nor a lease computed before the pauses). The
        batch stays leased meanwhile, and if every try fails it is sent
        again once its lease expires (same Message-ID).
        """
        if pending is None and claim and self._look_before_claiming and self._nothing_due():
            return []
        outcomes = self._decided(pending, self.clock()) if pending is not None else None
        claimed: list[ClaimedMessage] = []
        for pause in (*RECORD_PAUSES, None):
            try:
                with self.engine.begin() as conn:
                    now = self.clock()
                    if outcomes is not None:
                        recorded = self._write(conn, *outcomes, now)
                    if claim:
                        claimed = self._claim_in(conn, now)
                break
            except OperationalError as exc:
                if pause is None or outcomes is None:
                    raise
                log.warning("could not record a batch (%s); again in %.1fs", exc, pause)
                claim = False
                time.sleep(pause)
        if pending is not None and outcomes is not None:
            self._count(pending.attempts)
            lost = len(outcomes[0]) - len(recorded)
            if lost:
                log.warning("%d messages of this batch had been taken over by another worker", lost)
        self._note_taken_over(claimed)
        return claimed

    def _nothing_due(self) -> bool:
        """Whether a read snapshot shows nothing to claim now (nothing due, no lease expired).

        A claim on SQLite takes the file's one write lock, queueing behind
        intake's batch, and a dispatcher watching the file is woken by every
        commit, its own records included: without this look each of those
        wake-ups would take the lock only to find nothing. A read takes no
        lock. If the look fails, the claim goes ahead and meets the fault.
        """
        try:
            upcoming = self._next_wakeup()
        except SQLAlchemyError:
            return False
        return upcoming is None or upcoming > self.clock()

    def _next_wakeup(self) -> datetime | None:
        """When something next becomes claimable (:func:`next_wakeup`), read without a lock."""
        with read_only(self.engine) as conn:
            return next_wakeup(conn, CHANNEL)

    def _decided(
        self, sent: Sent, now: datetime
    ) -> tuple[list[tuple[Outcome, timeline.TimelineEntry]], list[SendResult]]:
        """Each message's outcome and timeline entry, and the results that follow from them."""
        shared: dict[int, dict[str, Any]] = {}
        decided = [
            decide(message, attempt, now, self.worker_id, self.settings, self._rng, shared)
            for message, attempt in zip(sent.claimed, sent.attempts, strict=True)
        ]
        results = [
            SendResult(message, outcome, attempt.kind, attempt.code, attempt.reply, attempt.refused)
            for message, attempt, (outcome, _) in zip(
                sent.claimed, sent.attempts, decided, strict=True
            )
        ]
        return decided, results

    def _write(
        self,
        conn: Connection,
        decided: Sequence[tuple[Outcome, timeline.TimelineEntry]],
        results: Sequence[SendResult],
        now: datetime,
    ) -> set[int]:
        """The outcomes this worker still holds, their timeline entries, and what follows
        from them (address health, follow-ups, webhooks).

        Safe to run again after a failed commit: what was recorded is no
        longer leased to this worker, so it is not written twice.
        """
        recorded = record_outcomes(
            conn, [outcome for outcome, _ in decided], worker_id=self.worker_id, now=now
        )
        timeline.record(
            conn, [entry for outcome, entry in decided if outcome.message_id in recorded]
        )
        mine = [result for result in results if result.outcome.message_id in recorded]
        if mine:
            health.note_send_results(conn, mine, now)
            followups.plan_follow_ups(conn, mine, now, signer=self.outgoing.links)
            webhooks.enqueue(conn, result_events(mine), now)
        return recorded

    @staticmethod
    def _count(attempts: Sequence[Attempt]) -> None:
        sent = sum(1 for a in attempts if a.kind == "sent")
        if sent:
            metrics.messages_sent.labels(CHANNEL).inc(sent)
        for outcome in ("transient", "permanent"):
            failed = sum(1 for a in attempts if a.kind == outcome)
            if failed:
                metrics.send_failures.labels(CHANNEL, outcome).inc(failed)

    # -- the loop ----------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Send batches until ``stop`` is set; then finish in-flight sends and release the rest.

        Batches run one after the other, each recorded before (or as) the
        next is claimed, so a crash can resend at most one batch. Between batches it
        sleeps until poked (in-process or ``NOTIFY``), the next due time or
        lease expiry, or ``poll_seconds``, whichever comes first.
        """
        self._stop = stop
        self.wakeup.listen(self.engine)
        failures = 0
        while not stop.is_set():
            try:
                handled = self.step()
            except Exception:  # a dead dispatcher sends nothing: log, wait, go on
                failures += 1
                pause = min(self.settings.poll_seconds * 2**failures, 30.0)
                log.exception("dispatcher batch failed; again in %.1fs", pause)
                stop.wait(pause)
                continue
            failures = 0
            idle = self._unrecorded is None and handled < self.settings.batch_size
            if idle and not stop.is_set():
                self.wakeup.wait(self._pause())
        unrecorded, self._unrecorded = self._unrecorded, None
        if unrecorded is not None:  # sent, not yet recorded: record it before leaving
            self._record_alone(unrecorded)

    def _pause(self) -> float:
        """Seconds to sleep: until the next due time or lease expiry, at most ``poll_seconds``."""
        poll = self.settings.poll_seconds
        try:
            upcoming = self._next_wakeup()
        except SQLAlchemyError:
            return poll
        if upcoming is None:
            return poll
        # Due now but not claimed: rows locked by another worker; look again soon.
        return min(poll, max(0.05, (upcoming - self.clock()).total_seconds()))

    def close(self) -> None:
        """Wait for sends in flight and free the threads (and its own wake-up's listener)."""
        self._executor.shutdown(wait=True)
        if self._own_wakeup:
            self.wakeup.close()
