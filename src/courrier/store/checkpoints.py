"""SQLite: the write-ahead log checkpointed in a thread of its own, off the writers' path.

In WAL mode a commit appends the transaction's pages to the ``-wal`` file;
a checkpoint copies them back into the database file and syncs both. By
default the connection whose commit takes the log past 1,000 pages runs
that checkpoint itself, right after its commit: with message rows of a
few kilobytes that is every few batches, and the intake or worker that
happened to commit waits the copy and the two syncs out.

Here each engine on a SQLite file has one :class:`Checkpointer`: a daemon
thread with a connection of its own, woken by commits, running a
``PASSIVE`` checkpoint at most every :data:`PAUSE` seconds. A passive
checkpoint never waits for a lock and never blocks a reader or a writer,
and SQLite runs it with the interpreter lock released, so the copy and the
syncs go on beside the Python that commits. The engine's own connections
still checkpoint automatically, but only past :data:`AUTOMATIC_PAGES`,
far beyond what the thread lets the log reach: if the thread falls behind
(or cannot open the file), writers checkpoint as before. Several processes
on one file each have their own thread; SQLite runs one checkpoint at a
time and the others return at once.

Durability is unchanged: with ``synchronous=NORMAL`` in WAL mode a commit
is already durable against a crash of the process without a sync, whoever
checkpoints later.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref

__all__ = ["AUTOMATIC_PAGES", "LOG_SIZE_LIMIT", "Checkpointer"]

log = logging.getLogger(__name__)

#: seconds from a commit to the checkpoint (the commits in between go with it)
PAUSE = 0.05
#: the engine's own connections checkpoint only past this many pages of log (16 MiB of 4 KiB)
AUTOMATIC_PAGES = 4096
#: a log file left larger than this once checkpointed is cut back to it (bytes)
LOG_SIZE_LIMIT = 64 * 1024 * 1024


class Checkpointer:
    """Checkpoints one SQLite file's WAL in a daemon thread after commits.

    The thread starts at the first commit; :meth:`close` (the engine's
    ``dispose()``, or the engine's end) stops it, and a later commit starts
    a new one. A forked child starts its own at its first commit.
    """

    def __init__(self, path: str, *, pause: float = PAUSE) -> None:
        self.path = path
        self.pause = pause
        self._lock = threading.Lock()
        self._running: tuple[threading.Thread, threading.Event, threading.Event] | None = None
        _ALIVE.add(self)

    def _forget_thread(self) -> None:
        """In a forked child: the parent's thread is not there (nor its lock's holder)."""
        self._lock = threading.Lock()
        self._running = None

    def committed(self) -> None:
        """A transaction is committing: checkpoint a moment later."""
        running = self._running
        if running is None:
            with self._lock:
                running = self._running
                if running is None:
                    wake, stop = threading.Event(), threading.Event()
                    thread = threading.Thread(
                        target=self._run, args=(wake, stop), name="courrier-checkpoint", daemon=True
                    )
                    running = self._running = (thread, wake, stop)
                    thread.start()
        running[1].set()

    def close(self) -> None:
        """Stop the thread, after the checkpoint it may be running."""
        with self._lock:
            running, self._running = self._running, None
        if running is None:
            return
        thread, wake, stop = running
        stop.set()
        wake.set()
        if thread is not threading.current_thread():
            thread.join(timeout=10.0)

    def _run(self, wake: threading.Event, stop: threading.Event) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:  # the writers' automatic checkpoint still works
            log.warning("no background checkpoints for %s: %s", self.path, exc)
            return
        try:
            while not stop.is_set():
                wake.wait()
                # the commit that woke it lands meanwhile; those that follow go together
                if stop.wait(self.pause):
                    break
                wake.clear()
                self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # the file gone or busy: the next commit tries again
            log.debug("checkpoint of %s failed: %s", self.path, exc)


_ALIVE: weakref.WeakSet[Checkpointer] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for checkpointer in list(_ALIVE):
        checkpointer._forget_thread()


os.register_at_fork(after_in_child=_after_fork_in_child)
