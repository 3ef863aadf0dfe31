"""Waking the dispatcher when a message becomes due now, instead of polling tightly.

In one process (``courrier serve``, SQLite), intake calls :meth:`Wakeup.poke`
after its commit. Across processes on PostgreSQL, intake calls
:func:`notify_due` inside its transaction (PostgreSQL delivers the NOTIFY
only on commit), and each worker's :class:`Wakeup` listens on
``courrier_due`` with a separate psycopg connection. Across processes on
SQLite (``courrier api`` and ``courrier worker`` on one file), which has no
notifications, each worker's :class:`Wakeup` watches the file's
``PRAGMA data_version`` every :data:`WATCH_SECONDS`: it changes when another
connection commits, and reading it touches no table (a few microseconds).
"""

from __future__ import annotations

import logging
import sqlite3
import threading

import psycopg
from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine

__all__ = ["CHANNEL", "WATCH_SECONDS", "Wakeup", "notify_due"]

CHANNEL = "courrier_due"
#: how often a worker on a SQLite file looks whether another connection committed
WATCH_SECONDS = 0.02

log = logging.getLogger(__name__)


def notify_due(conn: Connection) -> None:
    """Inside intake's transaction: tell listening workers on commit. Nothing on SQLite."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"NOTIFY {CHANNEL}"))


class Wakeup:
    """A wake-up signal: poked in-process, on PostgreSQL by ``NOTIFY courrier_due``, and on a
    SQLite file by any other connection's commit."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._closing = threading.Event()
        self._listener: threading.Thread | None = None

    def poke(self) -> None:
        """Wake the waiting dispatcher (after intake's commit)."""
        self._event.set()

    def wait(self, timeout: float) -> bool:
        """Sleep until poked or ``timeout`` seconds pass; True when poked."""
        poked = self._event.wait(max(0.0, timeout))
        self._event.clear()
        return poked

    def listen(self, engine: Engine) -> None:
        """Start a thread that pokes when another process may have made something due.

        On PostgreSQL it LISTENs and pokes on each notification; on a SQLite
        file it watches for other connections' commits. Nothing for a SQLite
        database in memory, which no other process can reach.
        """
        if self._listener is not None:
            return
        ready = threading.Event()
        if engine.dialect.name == "postgresql":
            conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._listener = threading.Thread(
                target=self._listen, args=(conninfo, ready), name="courrier-listen", daemon=True
            )
        elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            self._listener = threading.Thread(
                target=self._watch, args=(engine, ready), name="courrier-watch", daemon=True
            )
        else:
            return
        self._listener.start()
        ready.wait(5.0)

    def _watch(self, engine: Engine, ready: threading.Event) -> None:
        """Poke whenever the SQLite file's ``data_version`` moves: another connection committed.

        Its own connection never writes, so every change is someone else's:
        intake in an API process, or this process's own dispatcher recording
        (one needless look at the queue, on a read snapshot: the dispatcher
        looks before it takes the write lock to claim).
        """
        try:
            conn = engine.raw_connection()
        except Exception as exc:  # the dispatcher reports an unreachable database itself
            log.warning("cannot watch %s for commits (%s); polling only", engine.url, exc)
            ready.set()
            return
        try:
            cursor = conn.cursor()
            seen = None
            while not self._closing.is_set():
                try:
                    # fetchall: a statement left unfinished would hold a read open
                    ((version,),) = cursor.execute("PRAGMA data_version").fetchall()
                except sqlite3.Error as exc:
                    log.warning("watching for commits failed (%s); again in 1s", exc)
                    self._closing.wait(1.0)
                    continue
                if seen is not None and version != seen:
                    self.poke()
                seen = version
                ready.set()
                self._closing.wait(WATCH_SECONDS)
        finally:
            ready.set()
            conn.close()

    def _listen(self, conninfo: str, ready: threading.Event) -> None:
        """LISTEN until closed; reconnect with a growing pause when the server goes away."""
        pause = 0.5
        while not self._closing.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    ready.set()
                    pause = 0.5
                    # Something may have become due while we were not listening.
                    self.poke()
                    while not self._closing.is_set():
                        for _ in conn.notifies(timeout=0.5):
                            self.poke()
            except psycopg.Error as exc:
                log.warning("LISTEN %s failed (%s); retrying in %.1fs", CHANNEL, exc, pause)
                ready.set()
                self._closing.wait(pause)
                pause = min(pause * 2, 30.0)

    def close(self) -> None:
        """Stop listening (within half a second)."""
        self._closing.set()
        self._event.set()
        if self._listener is not None:
            self._listener.join(timeout=5.0)
            self._listener = None
