"""Reading the tenants' mailboxes: one thread per mailbox, never losing or repeating a mail.

Each folder's position is its UIDVALIDITY and the last UID committed; the
read flag is never used. A batch of mails is fetched with ``BODY.PEEK``
(which leaves ``\\Seen`` alone), parsed, and committed to the database with
the new position in one transaction; only then is anything changed on the
server (the ``$Courrier`` keyword, and the move to the processed folder when
one is set). A crash at any point therefore either loses nothing (the batch
is fetched again) or repeats nothing (the position moved with the mails);
server changes left undone by a crash are finished on the next start. A
UIDVALIDITY change re-reads the folder, and already stored mails are
skipped by content hash and Message-ID.

Where the server has IDLE the reader waits on it; otherwise it polls. When
the server goes away it reconnects with a doubling delay; each mailbox has
its own thread, so one failing mailbox never stops the others. A lease on
the mailbox row keeps one reader per mailbox across worker processes.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import imapclient  # type: ignore[import-untyped]
from imapclient.exceptions import IMAPClientError  # type: ignore[import-untyped]
from prometheus_client import Counter
from sqlalchemy.engine import Engine

from courrier.clock import Clock, utcnow
from courrier.errors import ConfigurationError
from courrier.inbound.connection import MailboxAccess, MailboxError, connected, translate_errors
from courrier.inbound.documents import DocumentFiles
from courrier.inbound.filing import Origin, Received, file_mails
from courrier.inbound.parsing import ParsedMail, parse_mail
from courrier.inbound.passwords import PasswordBox
from courrier.metrics import registry
from courrier.settings import Settings
from courrier.store import inbound as store
from courrier.store.db import read_only

log = logging.getLogger(__name__)

#: The keyword set on a mail once it is committed (for people looking at the mailbox).
FILED_KEYWORD = b"$Courrier"
MAX_BACKOFF_SECONDS = 300.0

mails_read = Counter(
    "courrier_inbound_mails",
    "Received mails committed, by kind (duplicates skipped).",
    ["kind"],
    registry=registry,
)
mailbox_errors = Counter(
    "courrier_inbound_mailbox_errors",
    "Mailbox connections that failed, by reason.",
    ["reason"],
    registry=registry,
)


class LeaseLost(Exception):
    """Another reader took this mailbox over; stop writing for it."""


class MailboxReader:
    """Reads one mailbox until ``stop`` is set; run it in its own thread."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        mailbox_id: int,
        *,
        stop: threading.Event,
        owner: str,
        clock: Clock = utcnow,
    ) -> None:
        self.engine, self.settings, self.mailbox_id = engine, settings, mailbox_id
        self.stop, self.owner, self.clock = stop, owner, clock
        self.files = DocumentFiles(settings.documents_dir)
        self.box = PasswordBox(settings)
        self.renew_every = min(settings.imap_poll_seconds, settings.imap_lease_seconds / 3)

    def run(self) -> None:
        """Connect, read, wait, repeat; on failure wait and reconnect; end once stopped or gone."""
        backoff = self.settings.imap_retry_seconds
        while not self.stop.is_set():
            mailbox: dict[str, Any] | None = None
            try:
                held = self._hold()
                if held is None:
                    break
                if held is False:
                    self.stop.wait(self.renew_every)
                    continue
                mailbox = held  # type: ignore[assignment]
                self._session(held)  # type: ignore[arg-type]
                backoff = self.settings.imap_retry_seconds
            except LeaseLost:
                log.info("mailbox %s: taken over by another reader", self.mailbox_id)
            except Exception as exc:  # broad on purpose: a reader thread never dies
                self._failed(mailbox, exc)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        self._release()

    def _release(self) -> None:
        try:
            with self.engine.begin() as conn:
                store.release_lease(conn, self.mailbox_id, self.owner)
        except Exception:  # broad on purpose: the lease expires on its own
            log.warning("mailbox %s: could not release its lease", self.mailbox_id)

    def _hold(self) -> dict[str, Any] | bool | None:
        """The mailbox row if this reader holds it; False if another does; None if it is gone."""
        with self.engine.begin() as conn:
            mailbox = store.mailbox_for_reader(conn, self.mailbox_id)
            if mailbox is None or not mailbox["enabled"]:
                return None
            if owner_is_dead(mailbox["lease_owner"]):
                store.release_lease(conn, self.mailbox_id, mailbox["lease_owner"])
            held = store.take_lease(
                conn,
                self.mailbox_id,
                self.owner,
                now=self.clock(),
                seconds=self.settings.imap_lease_seconds,
            )
        return mailbox if held else False

    def _renew(self) -> None:
        with self.engine.begin() as conn:
            if not store.take_lease(
                conn,
                self.mailbox_id,
                self.owner,
                now=self.clock(),
                seconds=self.settings.imap_lease_seconds,
            ):
                raise LeaseLost

    def access(self, mailbox: dict[str, Any]) -> MailboxAccess:
        return MailboxAccess(
            host=mailbox["host"],
            port=mailbox["port"],
            security=mailbox["security"],
            username=mailbox["username"],
            password=self.box.decrypt(mailbox["password_encrypted"]),
            folders=tuple(mailbox["folders"]),
            timeout=self.settings.imap_timeout,
            allowed_networks=self.settings.imap_networks,
        )

    def _failed(self, mailbox: dict[str, Any] | None, exc: Exception) -> None:
        """Count and record a failure in words, for the API and the logs."""
        error: Exception = exc
        if mailbox is not None and not isinstance(exc, MailboxError | ConfigurationError):
            try:
                error = translate_errors(self.access(mailbox), exc)
            except ConfigurationError as config_error:
                error = config_error
        mailbox_errors.labels(reason=getattr(error, "reason", type(error).__name__)).inc()
        log.warning("mailbox %s: %s", self.mailbox_id, error)
        try:
            with self.engine.begin() as conn:
                store.record_check(conn, self.mailbox_id, error=str(error), now=self.clock())
        except Exception:  # broad on purpose: the database may be what failed
            log.exception("mailbox %s: cannot record the failure", self.mailbox_id)

    def read_once(self) -> None:
        """One pass over every folder (connect, import, disconnect); for tests and tools."""
        mailbox = self._hold()
        if not isinstance(mailbox, dict):
            raise LeaseLost
        access = self.access(mailbox)
        with connected(access) as client:
            for folder in access.folders:
                self.read_folder(client, mailbox, folder)

    def _session(self, mailbox: dict[str, Any]) -> None:
        access = self.access(mailbox)
        with connected(access) as client:
            idle = b"IDLE" in client.capabilities()
            while not self.stop.is_set():
                for folder in access.folders:
                    self.read_folder(client, mailbox, folder)
                with self.engine.begin() as conn:
                    store.record_check(conn, self.mailbox_id, error=None, now=self.clock())
                self._wait(client, access.folders[0], idle)
                self._renew()

    def _wait(self, client: imapclient.IMAPClient, folder: str, idle: bool) -> None:
        """Until new mail may be there: IDLE on the first folder, or a plain wait."""
        if not idle:
            self.stop.wait(self.renew_every)
            client.noop()
            return
        client.select_folder(folder)
        client.idle()
        deadline = time.monotonic() + self.renew_every
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                if _new_mail(client.idle_check(timeout=0.5)):
                    break
        finally:
            client.idle_done()

    def read_folder(
        self, client: imapclient.IMAPClient, mailbox: dict[str, Any], folder: str
    ) -> None:
        """Import every mail of ``folder`` after the committed position, batch by batch."""
        try:
            selected = client.select_folder(folder)
        except IMAPClientError as exc:
            raise MailboxError("folder_missing", f"folder missing: {folder!r}") from exc
        uidvalidity = int(selected[b"UIDVALIDITY"])
        with read_only(self.engine) as conn:
            position = store.folder_position(conn, self.mailbox_id, folder)
        last_uid = position[1] if position and position[0] == uidvalidity else 0
        if position and position[0] != uidvalidity:
            log.warning(
                "mailbox %s %s: UIDVALIDITY changed, reading it again", self.mailbox_id, folder
            )
        self._finish_server_changes(client, mailbox, last_uid)
        uids = sorted(u for u in client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid)
        size = self.settings.inbound_batch_size
        for start in range(0, len(uids), size):
            if self.stop.is_set():
                return
            batch = uids[start : start + size]
            self._import(client, mailbox, folder, uidvalidity, batch)
            self._after_commit(client, mailbox, batch)

    def _import(
        self,
        client: imapclient.IMAPClient,
        mailbox: dict[str, Any],
        folder: str,
        uidvalidity: int,
        batch: list[int],
    ) -> None:
        limit = self.settings.inbound_max_bytes
        sizes = {
            u: int(d.get(b"RFC822.SIZE", 0))
            for u, d in client.fetch(batch, ["RFC822.SIZE"]).items()
        }
        small = [u for u in batch if sizes.get(u, 0) <= limit]
        large = [u for u in batch if sizes.get(u, 0) > limit]
        bodies = (
            {u: d.get(b"BODY[]") for u, d in client.fetch(small, ["BODY.PEEK[]"]).items()}
            if small
            else {}
        )
        heads = (
            {
                u: d.get(b"BODY[HEADER]")
                for u, d in client.fetch(large, ["BODY.PEEK[HEADER]"]).items()
            }
            if large
            else {}
        )
        parsed: list[tuple[int, ParsedMail, str | None]] = []
        for uid in batch:
            if uid in bodies and bodies[uid] is not None:
                parsed.append((uid, parse_mail(bodies[uid]), None))
            elif uid in heads and heads[uid] is not None:
                mail = parse_mail(heads[uid], headers_only=True)
                mail.raw_size = sizes[uid]
                reason = (
                    f"mail of {sizes[uid]:,} bytes is over the {limit:,}-byte limit "
                    "(COURRIER_INBOUND_MAX_BYTES): headers only"
                )
                parsed.append((uid, mail, reason))
        now = self.clock()
        with self.engine.begin() as conn:
            if not store.take_lease(
                conn, self.mailbox_id, self.owner, now=now, seconds=self.settings.imap_lease_seconds
            ):
                raise LeaseLost
            tenant_id = mailbox["tenant_id"]
            received = [
                Received(
                    Origin(tenant_id, self.mailbox_id, folder, uidvalidity, uid), mail, skipped
                )
                for uid, mail, skipped in parsed
            ]
            for filed in file_mails(conn, tenant_id, received, self.files, now=now):
                mails_read.labels(kind=filed.kind).inc()
            store.save_folder_position(
                conn, self.mailbox_id, folder, uidvalidity, max(batch), now=now
            )

    def _after_commit(
        self, client: imapclient.IMAPClient, mailbox: dict[str, Any], uids: Sequence[int]
    ) -> None:
        """Mark committed mails, and move them when the mailbox says so. Only after the commit."""
        client.add_flags(uids, [FILED_KEYWORD], silent=True)
        if mailbox["move_to"]:
            if client.has_capability("MOVE"):
                client.move(uids, mailbox["move_to"])
            else:
                client.copy(uids, mailbox["move_to"])
                client.delete_messages(uids, silent=True)
                client.uid_expunge(uids)

    def _finish_server_changes(
        self, client: imapclient.IMAPClient, mailbox: dict[str, Any], last_uid: int
    ) -> None:
        """Flag (and move) committed mails a crash left untouched on the server."""
        if last_uid <= 0:
            return
        if mailbox["move_to"]:
            pending = client.search(["UID", f"1:{last_uid}"])
        else:
            pending = client.search(["UID", f"1:{last_uid}", "UNKEYWORD", FILED_KEYWORD.decode()])
        pending = [u for u in pending if u <= last_uid]
        if pending:
            self._after_commit(client, mailbox, pending)


def _new_mail(responses: list[Any]) -> bool:
    """True when IDLE reported new mail (``* n EXISTS``), not a mere keep-alive."""
    return any(
        isinstance(r, tuple) and len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses
    )


def owner_name() -> str:
    """``host:pid:random``: who holds a mailbox, precise enough to tell a dead local holder."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str | None) -> bool:
    """True when ``owner`` was a process of this machine that no longer runs.

    Its lease need not be waited out: a ``courrier serve`` restarted after a
    crash reads its mailboxes at once. Holders on other machines are left
    to their lease's expiry.
    """
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname()[:30] or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class MailboxReaders:
    """Every enabled mailbox of every tenant, each read in its own thread.

    ``courrier serve`` and ``courrier worker`` start it next to the dispatcher;
    mailboxes added or removed later are picked up every ``refresh_seconds``.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Clock = utcnow,
        *,
        refresh_seconds: float = 10.0,
    ) -> None:
        self.engine, self.settings, self.clock = engine, settings, clock
        self.refresh_seconds = refresh_seconds
        self.owner = owner_name()
        self._stop = threading.Event()
        self._threads: dict[int, threading.Thread] = {}
        self._supervisor: threading.Thread | None = None

    def start(self) -> MailboxReaders:
        self._refresh()
        self._supervisor = threading.Thread(
            target=self._supervise, name="courrier-mailboxes", daemon=True
        )
        self._supervisor.start()
        return self

    def _supervise(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self._refresh()
            except Exception:  # broad on purpose: a database hiccup must not end the supervisor
                log.exception("mailbox readers: cannot list mailboxes")

    def _refresh(self) -> None:
        with read_only(self.engine) as conn:
            ids = store.enabled_mailbox_ids(conn)
        for mailbox_id in ids:
            thread = self._threads.get(mailbox_id)
            if thread is None or not thread.is_alive():
                reader = MailboxReader(
                    self.engine,
                    self.settings,
                    mailbox_id,
                    stop=self._stop,
                    owner=self.owner,
                    clock=self.clock,
                )
                thread = threading.Thread(
                    target=reader.run, name=f"courrier-mailbox-{mailbox_id}", daemon=True
                )
                self._threads[mailbox_id] = thread
                thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every reader; each ends its batch (or drops it uncommitted), frees its mailbox."""
        self._stop.set()
        threads = list(self._threads.values()) + ([self._supervisor] if self._supervisor else [])
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def main() -> int:
    """``python -m courrier.inbound.reader``: read every mailbox until SIGTERM or SIGINT."""
    from courrier.store.db import create_db_engine

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings()
    engine = create_db_engine(settings.database_url)
    readers = MailboxReaders(
        engine, settings, refresh_seconds=min(settings.imap_poll_seconds, 10.0)
    ).start()
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    readers.stop()
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
