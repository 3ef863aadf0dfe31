"""Several mails on one SMTP connection, pipelined across mails: one round trip a mail.

RFC 2920 lets a client send the next transaction's MAIL, RCPT and DATA
right after the end-of-data dot of the previous mail, in the same write.
So, with a server that offers PIPELINING, each write carries the content of
the mail before and the envelope of the next, and each read gets the reply
to that content and the envelope's replies: a mail costs one round trip
(two for a single mail), one ``send`` and about one ``recv``. Without
PIPELINING the mails go one after the other, each as
:func:`~courrier.channels.smtp_transaction.send_mail` sends it.

Each mail gets its own result, whatever happens to the others:

* :class:`Accepted` once the server acknowledged its end of data;
* a refusal (:class:`TransientDeliveryError` 4xx, :class:`PermanentDeliveryError`
  5xx) for a mail the server refused; the session is reset and the next mail
  goes on the same connection;
* :class:`TransientDeliveryError` for a mail whose content was sent but whose
  acknowledgement never came (the connection dropped): it may have been
  received, so it is retried later with the same Message-ID;
* None for a mail whose content was never sent (the connection died before,
  or ``stop`` said so): nothing of it was delivered, it may go on another
  connection at once.

After a dropped connection (or a 421) the connection is closed and the
rest of the group is left None.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Sequence
from typing import NamedTuple

from courrier.channels.smtp_transaction import (
    Accepted,
    Refusal,
    StaleConnection,
    delivery_error,
    describe,
    dot_stuffed,
    joined_options,
    mail_options,
    quoted_address,
    reset,
    send_mail,
    worst,
)
from courrier.errors import PermanentDeliveryError, TransientDeliveryError

__all__ = ["Group", "Mail", "Result", "send_group"]

#: one mail: the envelope sender, the recipients, the content (CRLF lines)
Mail = tuple[str, Sequence[str], bytes]
Result = Accepted | Refusal | None
_OK = (250, 251)


class Group(NamedTuple):
    """What became of a group: one result per mail, and why the connection died, if it did."""

    results: list[Result]
    failure: str | None  # e.g. "connection dropped by the server", "timed out"


def send_group(
    conn: smtplib.SMTP,
    mails: Sequence[Mail],
    *,
    where: str,
    stop: Callable[[], bool] | None = None,
) -> Group:
    """Send ``mails`` on ``conn``; one result per mail (see the module's docstring).

    ``stop`` is asked before each mail is offered; once it says so, the
    mail in flight is finished and the others are left None. The connection
    is closed (``conn.sock`` is None) when it can carry no more mail.
    """
    if conn.has_extn("pipelining"):
        return _Pipeline(conn, mails, where, stop).run()
    return _one_by_one(conn, mails, where, stop)


def _one_by_one(
    conn: smtplib.SMTP, mails: Sequence[Mail], where: str, stop: Callable[[], bool] | None
) -> Group:
    results: list[Result] = [None] * len(mails)
    failure = None
    for k, (sender, recipients, data) in enumerate(mails):
        if not recipients:
            results[k] = PermanentDeliveryError("no recipient")
            continue
        if stop is not None and stop():
            break
        try:
            results[k] = send_mail(conn, sender, recipients, data, where=where)
        except StaleConnection as exc:
            failure = describe(exc.__cause__ or exc)
            conn.close()  # this mail and the rest were not offered
            break
        except (TransientDeliveryError, PermanentDeliveryError) as exc:
            results[k] = exc
            if exc.code is None or exc.code == 421:
                failure = exc.reply
                conn.close()
                break
    return Group(results, failure)


class _Pipeline:
    """One pass over a group with PIPELINING: each write is the last content and the next envelope."""

    def __init__(
        self,
        conn: smtplib.SMTP,
        mails: Sequence[Mail],
        where: str,
        stop: Callable[[], bool] | None,
    ) -> None:
        self.conn = conn
        self.mails = mails
        self.where = where
        self.stop = stop
        self.results: list[Result] = [None] * len(mails)
        self.pending: int | None = None  # the mail whose content was sent, not yet acknowledged
        self.pending_refused: tuple[tuple[str, Refusal], ...] = ()
        self.out = b""  # the pending mail's content, to leave with the next envelope
        self.failure: str | None = None

    def run(self) -> Group:
        for k, (sender, recipients, data) in enumerate(self.mails):
            if not recipients:
                self.results[k] = PermanentDeliveryError("no recipient")
                continue
            if self.stop is not None and self.stop():
                break
            try:
                envelope = self._envelope(sender, recipients, data)
            except UnicodeEncodeError:
                self.results[k] = PermanentDeliveryError(
                    "an address is not ASCII and the server does not offer SMTPUTF8"
                )
                continue
            if not self._offer(k, envelope, recipients, data):
                return Group(self.results, self.failure)
        if self.pending is not None and self._write(b""):
            self._acknowledge()
        return Group(self.results, self.failure)

    def _envelope(self, sender: str, recipients: Sequence[str], data: bytes) -> bytes:
        """MAIL, every RCPT and DATA as one write, in the connection's command encoding."""
        options = joined_options(mail_options(self.conn, sender, recipients, data))
        commands = [f"MAIL FROM:{quoted_address(sender)}{options}\r\n"]
        commands += [f"RCPT TO:{quoted_address(r)}\r\n" for r in recipients]
        commands.append("DATA\r\n")
        return "".join(commands).encode(self.conn.command_encoding)

    def _offer(self, k: int, envelope: bytes, recipients: Sequence[str], data: bytes) -> bool:
        """Write the last content and mail ``k``'s envelope, read the replies; False: stop here."""
        if not self._write(envelope):
            return False
        if self.pending is not None and not self._acknowledge():
            return False
        try:
            replies = self._replies(1 + len(recipients) + 1)
        except _Dropped as dropped:
            if dropped.first is not None and dropped.first[0] != 250:
                self.results[k] = delivery_error(*dropped.first)  # e.g. 421: said why, hung up
            self._lost(dropped.__cause__ or dropped)
            return False
        (mail_code, mail_reply), *rcpt_replies, (data_code, data_reply) = replies
        accepted = sum(1 for code, _ in rcpt_replies if code in _OK)
        if data_code == 354 and (mail_code != 250 or not accepted):
            # A server that says go ahead with no valid envelope: end the session
            # rather than send content nobody should get.
            self.conn.close()
        if mail_code != 250:
            return self._refused(k, delivery_error(mail_code, mail_reply))
        if not accepted:
            return self._refused(k, worst([delivery_error(c, r) for c, r in rcpt_replies]))
        if data_code != 354:
            return self._refused(k, delivery_error(data_code, data_reply))
        self.pending, self.out = k, dot_stuffed(data)
        self.pending_refused = tuple(
            (recipient, delivery_error(c, r))
            for recipient, (c, r) in zip(recipients, rcpt_replies, strict=True)
            if c not in _OK
        )
        return True

    def _write(self, envelope: bytes) -> bool:
        """Send the pending content and ``envelope``; on a dead connection, settle and close."""
        try:
            self.conn.send(self.out + envelope)
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._lost(exc)
            return False
        self.out = b""
        return True

    def _acknowledge(self) -> bool:
        """Read the reply to the pending mail's end of data; False when the connection is gone."""
        k = self.pending
        assert k is not None
        self.pending = None
        try:
            code, reply = self.conn.getreply()
        except (OSError, smtplib.SMTPException) as exc:
            self.pending = k
            self._lost(exc)
            return False
        if code != 250:
            # The transaction ended with this reply (RFC 5321 4.1.1.4), and the next
            # envelope is on its way already: no RSET, which would be read out of turn.
            self.results[k] = error = delivery_error(code, reply)
            if code == 421:
                self.failure = error.reply
                self.conn.close()
                return False
            return True
        text = " ".join(reply.decode("utf-8", "replace").split())
        self.results[k] = Accepted(f"{code} {text}", self.pending_refused)
        return True

    def _replies(self, count: int) -> list[tuple[int, bytes]]:
        replies: list[tuple[int, bytes]] = []
        try:
            for _ in range(count):
                replies.append(self.conn.getreply())
        except (OSError, smtplib.SMTPException) as exc:
            raise _Dropped(replies[0] if replies else None) from exc
        return replies

    def _refused(self, k: int, error: Refusal) -> bool:
        """Mail ``k`` refused: reset the session for the next; False when the connection is gone."""
        self.results[k] = reset(self.conn, error)
        if error.code == 421:
            self.failure = error.reply
            self.conn.close()
        return self.conn.sock is not None

    def _lost(self, exc: BaseException) -> None:
        """The connection died: the mail whose content left unacknowledged is a transient failure."""
        self.failure = describe(exc)
        if self.pending is not None:
            self.results[self.pending] = TransientDeliveryError(
                f"sending to {self.where}: {self.failure}"
            )
            self.pending = None
        self.conn.close()


class _Dropped(Exception):
    """The connection died while reading an envelope's replies (``first``: the MAIL reply, if any)."""

    def __init__(self, first: tuple[int, bytes] | None) -> None:
        super().__init__()
        self.first = first
