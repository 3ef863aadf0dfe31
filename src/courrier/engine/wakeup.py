"""Waking the dispatcher when a message becomes due now, instead of polling tightly.

In one process (``courrier serve``, SQLite), intake calls :meth:`Wakeup.poke`
after its commit. Across processes on PostgreSQL, intake calls
:func:`notify_due` inside its transaction (PostgreSQL delivers the NOTIFY
only on commit), and each worker's :class:`Wakeup` listens on
``courrier_due`` with a separate psycopg connection.
"""

from __future__ import annotations

import logging
import threading

import psycopg
from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine

__all__ = ["CHANNEL", "Wakeup", "notify_due"]

CHANNEL = "courrier_due"

log = logging.getLogger(__name__)


def notify_due(conn: Connection) -> None:
    """Inside intake's transaction: tell listening workers on commit. Nothing on SQLite."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"NOTIFY {CHANNEL}"))


class Wakeup:
    """A wake-up signal: poked in-process, and on PostgreSQL by ``NOTIFY courrier_due``."""

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
        """On PostgreSQL, start a thread that LISTENs and pokes on each notification."""
        if engine.dialect.name != "postgresql" or self._listener is not None:
            return
        conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        ready = threading.Event()
        self._listener = threading.Thread(
            target=self._listen, args=(conninfo, ready), name="courrier-listen", daemon=True
        )
        self._listener.start()
        ready.wait(5.0)

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
