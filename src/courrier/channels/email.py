"""The email channel: SMTP through a bounded pool of persistent smtplib connections.

Measured on this machine kind against Postfix's ``smtp-sink`` (2,000 mails of
~4 KB): four smtplib connections in threads sent 6,500-8,600 mails/s,
aiosmtplib over four connections 5,600 mails/s, so the dispatcher sends
from a thread pool. The transaction itself (pipelined where the server
allows) is in :mod:`courrier.channels.smtp_transaction`, and a group of mails
pipelined on one connection, one round trip a mail, in
:mod:`courrier.channels.smtp_group`; every failure from
smtplib or the socket becomes :class:`TransientDeliveryError` (4xx,
timeouts, dropped or refused connections) or :class:`PermanentDeliveryError`
(5xx, every recipient refused), keeping the server's code and reply.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from courrier.channels.smtp_group import Mail, Result, send_group
from courrier.channels.smtp_transaction import (
    Accepted,
    StaleConnection,
    delivery_error,
    describe,
    send_mail,
)
from courrier.errors import ConfigurationError, PermanentDeliveryError, TransientDeliveryError
from courrier.settings import SmtpTarget

__all__ = ["Mail", "Result", "SmtpSender", "delivery_error"]


class SmtpSender:
    """Sends mail over at most ``pool_size`` persistent SMTP connections; thread-safe.

    A connection is opened when a sender needs one and none is idle, kept
    open after each mail, and dropped after a connection-level failure.
    """

    def __init__(
        self,
        target: SmtpTarget,
        *,
        pool_size: int,
        timeout: float,
        local_hostname: str | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self.target = target
        self.pool_size = pool_size
        self.timeout = timeout
        # smtplib would otherwise ask DNS for our fully qualified name on every connect.
        self.local_hostname = local_hostname or socket.gethostname() or "localhost"
        # The system's trust store (SSL_CERT_FILE is honoured); tests pass their own CA.
        # Loading it takes tens of milliseconds, so only for a target that encrypts.
        self.tls_context = tls_context
        if tls_context is None and target.security != "plain":
            self.tls_context = ssl.create_default_context()
        self._idle: list[smtplib.SMTP] = []
        self._open = 0
        self._closed = False
        self._available = threading.Condition()

    @property
    def where(self) -> str:
        return f"{self.target.host}:{self.target.port}"

    def _connect(self) -> smtplib.SMTP:
        """A new, greeted (and if asked, encrypted and logged-in) connection."""
        target = self.target
        context = self.tls_context
        conn: smtplib.SMTP
        if target.security == "tls":
            conn = smtplib.SMTP_SSL(
                target.host,
                target.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=context,
            )
        else:
            conn = smtplib.SMTP(
                target.host, target.port, local_hostname=self.local_hostname, timeout=self.timeout
            )
        try:
            conn.ehlo()
            if target.security == "starttls":
                conn.starttls(context=context)
                conn.ehlo()
            if target.username:
                conn.login(target.username, target.password or "")
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_connection(self) -> smtplib.SMTP:
        """Connect, translating failures into a transient delivery error."""
        try:
            return self._connect()
        except smtplib.SMTPResponseException as exc:
            # A refused greeting or login: the server's fault or our setting, not the mail's.
            refusal = delivery_error(exc.smtp_code, exc.smtp_error)
            raise TransientDeliveryError(refusal.reply, code=refusal.code) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientDeliveryError(f"cannot reach {self.where}: {describe(exc)}") from exc

    def _acquire(self) -> tuple[smtplib.SMTP, bool]:
        """An idle connection (reused=True) or a new one once a slot is free."""
        with self._available:
            while not self._idle and self._open >= self.pool_size:
                self._available.wait()
            if self._closed:
                raise TransientDeliveryError("the SMTP sender is closed")
            if self._idle:
                return self._idle.pop(), True
            self._open += 1
        try:
            return self._open_connection(), False
        except BaseException:
            self._forget(None)
            raise

    def _give_back(self, conn: smtplib.SMTP) -> None:
        with self._available:
            if self._closed:
                self._open -= 1
                _quietly_close(conn)
            else:
                self._idle.append(conn)
            self._available.notify()

    def _forget(self, conn: smtplib.SMTP | None) -> None:
        """Drop a broken connection and free its slot."""
        if conn is not None:
            _quietly_close(conn)
        with self._available:
            self._open -= 1
            self._available.notify()

    @contextmanager
    def _connection(self) -> Iterator[tuple[smtplib.SMTP, bool]]:
        conn, reused = self._acquire()
        try:
            yield conn, reused
        except (TransientDeliveryError, PermanentDeliveryError) as exc:
            # A refusal with a code leaves a usable session; a socket failure or 421 does not.
            if exc.code is None or exc.code == 421:
                self._forget(conn)
            else:
                self._give_back(conn)
            raise
        except BaseException:
            self._forget(conn)
            raise
        else:
            if conn.sock is None:  # closed on the way: a dropped connection, a 421
                self._forget(conn)
            else:
                self._give_back(conn)

    def send(self, envelope_from: str, recipients: Sequence[str], data: bytes) -> str:
        """Send one mail; return the server's reply to DATA (e.g. ``250 2.0.0 Ok: queued``)."""
        return self.deliver(envelope_from, recipients, data).reply

    def deliver(self, envelope_from: str, recipients: Sequence[str], data: bytes) -> Accepted:
        """Send one mail; the server's reply to DATA and the recipients it refused.

        A reused connection that turns out dead before the mail was offered
        is replaced once, so an idle timeout on the server costs no retry.
        """
        if not recipients:
            raise PermanentDeliveryError("no recipient")
        for _ in range(2):
            try:
                with self._connection() as (conn, reused):
                    try:
                        return send_mail(conn, envelope_from, recipients, data, where=self.where)
                    except StaleConnection as exc:
                        if reused:
                            raise
                        raise TransientDeliveryError(
                            f"sending to {self.where}: {describe(exc.__cause__ or exc)}"
                        ) from exc
            except StaleConnection:
                continue
        raise TransientDeliveryError(f"cannot reach {self.where}: connection dropped by the server")

    def deliver_many(
        self, mails: Sequence[Mail], *, stop: Callable[[], bool] | None = None
    ) -> list[Result]:
        """Send ``mails`` on one connection, pipelined across mails; one result per mail.

        A result is :class:`Accepted`, the mail's refusal or failure (a
        :class:`TransientDeliveryError` for one whose end of data was sent
        but never acknowledged), or None for a mail not offered because
        ``stop`` said so (see :mod:`courrier.channels.smtp_group`). Mails
        not offered because the connection died go on a new one, as long as
        each connection carries at least one of them (or was an idle one found
        dead, replaced once, as :meth:`deliver` does).
        """
        results: list[Result] = [None] * len(mails)
        todo = list(range(len(mails)))
        stale = 0
        while todo:
            try:
                with self._connection() as (conn, reused):
                    group = send_group(conn, [mails[k] for k in todo], where=self.where, stop=stop)
            except TransientDeliveryError as exc:  # no connection: each gets why
                for k in todo:
                    results[k] = exc
                break
            left = []
            for k, result in zip(todo, group.results, strict=True):
                results[k] = result
                if result is None:
                    left.append(k)
            if group.failure is None or not left:  # done, or stopped: the rest stays None
                break
            if len(left) == len(todo):  # nothing went on this connection
                error = None
                if not reused:
                    error = TransientDeliveryError(f"sending to {self.where}: {group.failure}")
                elif stale:
                    error = TransientDeliveryError(
                        f"cannot reach {self.where}: connection dropped by the server"
                    )
                if error is not None:
                    for k in left:
                        results[k] = error
                    break
                stale += 1
            todo = left
        return results

    def check(self) -> None:
        """Connect and greet once; one line saying what is wrong when that fails."""
        try:
            conn = self._connect()
        except smtplib.SMTPAuthenticationError as exc:
            raise ConfigurationError(
                f"the SMTP server at {self.where} refused the login: "
                f"{delivery_error(exc.smtp_code, exc.smtp_error)}"
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise ConfigurationError(
                f"cannot reach the SMTP server at {self.where}: {describe(exc)}"
            ) from exc
        _quietly_close(conn)

    def close(self) -> None:
        """Say QUIT on every idle connection; busy ones close when given back."""
        with self._available:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._available.notify_all()
        for conn in idle:
            _quietly_close(conn)


def _quietly_close(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (OSError, smtplib.SMTPException):
        conn.close()
