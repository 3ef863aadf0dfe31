"""Local mail capture: an SMTP server on loopback that keeps every mail in the database.

With no ``COURRIER_SMTP_URL``, mail goes here instead of the world, so a
newcomer sees the whole path work on a bare machine: the dispatcher sends
through the same SMTP code as in production, and the API and console show
what arrived (table ``captured_mails``).
"""

from __future__ import annotations

import email.parser
import email.policy
import logging
import socket
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from courrier.clock import Clock, utcnow
from courrier.errors import ConfigurationError
from courrier.settings import SmtpTarget
from courrier.store.schema import captured_mails, messages

__all__ = ["LocalCapture"]

log = logging.getLogger(__name__)

_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.default)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _check_port_free(port: int) -> None:
    """Fail at once on a taken port (aiosmtpd would wait its whole ready timeout)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def _header(raw: bytes, name: str) -> str | None:
    """One decoded header of a raw mail, or None when absent or unreadable."""
    try:
        value = _HEADERS.parsebytes(raw).get(name)
    except (ValueError, LookupError):  # a malformed header must not lose the mail
        return None
    return " ".join(str(value).split()) if value is not None else None


class _StoringHandler:
    """aiosmtpd handler: one row in ``captured_mails`` per accepted mail."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content)
        message_id = _header(raw, "Message-ID")
        try:
            with self.engine.begin() as conn:
                tenant_id = None
                if message_id:
                    tenant_id = conn.execute(
                        select(messages.c.tenant_id)
                        .where(messages.c.message_id_header == message_id)
                        .limit(1)
                    ).scalar()
                conn.execute(
                    insert(captured_mails).values(
                        tenant_id=tenant_id,
                        message_id_header=message_id,
                        envelope_from=envelope.mail_from,
                        recipients=list(envelope.rcpt_tos),
                        subject_line=_header(raw, "Subject"),
                        raw=raw,
                        received_at=self.clock(),
                    )
                )
        except SQLAlchemyError:
            log.exception("local capture could not store a mail")
            return "451 4.3.0 Local capture could not store the mail; try again"
        return "250 2.0.0 Ok: captured"


class LocalCapture:
    """aiosmtpd on 127.0.0.1; ``port`` 0 picks a free one. ``target`` is where to send."""

    def __init__(self, engine: Engine, port: int = 0, *, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.port = port or _free_port()
        self._controller = Controller(
            _StoringHandler(engine, clock),
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="courrier.capture",
            ready_timeout=10.0,
        )
        self._running = False

    @property
    def target(self) -> SmtpTarget:
        return SmtpTarget(
            host="127.0.0.1", port=self.port, security="plain", username=None, password=None
        )

    def start(self) -> None:
        """Listen; a taken port becomes one line saying what to change."""
        try:
            _check_port_free(self.port)
            self._controller.start()
        except (OSError, RuntimeError) as exc:
            self._controller.loop.close()
            raise ConfigurationError(
                f"cannot start the local mail capture on 127.0.0.1:{self.port}: "
                f"{exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}; "
                "set COURRIER_CAPTURE_PORT to a free port or 0"
            ) from exc
        self._running = True
        log.info("local mail capture listening on 127.0.0.1:%s", self.port)

    def stop(self) -> None:
        if self._running:
            self._controller.stop()
            self._running = False
