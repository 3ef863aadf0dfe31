"""SMTP servers with a twist for delivery tests: slow, counting, refusing, silent, TLS with AUTH.

Each is a real aiosmtpd server on loopback (or a real socket that never
speaks), built on :class:`tests.support.smtp.SmtpServer`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.smtp import RecordingHandler, SmtpServer


class CountingHandler(RecordingHandler):
    """Records mail, counts SMTP sessions (EHLO), and can wait a while before each answer."""

    def __init__(
        self, delay: float = 0.0, refuse_rcpt: str | None = None, *, pipelining: bool = False
    ) -> None:
        super().__init__()
        self.delay = delay
        self.refuse_rcpt = refuse_rcpt
        self.pipelining = pipelining  # offer RFC 2920 (aiosmtpd reads pipelined commands fine)
        self.refuse_mail: str | None = None  # reply to every MAIL FROM instead of 250
        self.refused: dict[str, str] = {}  # recipient -> reply refusing it
        self.sessions = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refused:
            return self.refused[address]
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if self.refuse_mail:
            return self.refuse_mail
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def serve(handler: RecordingHandler, port: int | None = None) -> SmtpServer:
    """A started SmtpServer using ``handler`` (on ``port``, or a free one)."""
    server = SmtpServer()
    if port is not None:
        server.port = port
    server.handler = handler
    server.controller.loop.close()  # the unused default controller's loop
    server.controller = Controller(handler, hostname="127.0.0.1", port=server.port)
    return server.start()


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word (for timeouts)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not done.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        done.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


@dataclass(frozen=True)
class Tls:
    """A self-signed certificate for 127.0.0.1 and the contexts of both ends."""

    server: ssl.SSLContext
    client: ssl.SSLContext


def self_signed_tls(folder: Path) -> Tls:
    """A fresh key and certificate for 127.0.0.1, trusted by the client context only."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "courrier test SMTP")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return Tls(server=server, client=client)


def login_checker(user: str, password: str) -> Any:
    """An aiosmtpd authenticator accepting one login and password."""

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        good = isinstance(data, LoginPassword) and (data.login, data.password) == (
            user.encode(),
            password.encode(),
        )
        return AuthResult(success=good, handled=False)

    return check


def serve_tls(
    handler: RecordingHandler, tls: Tls, *, implicit: bool, user: str, password: str
) -> SmtpServer:
    """SMTPS (``implicit``) or STARTTLS-required with AUTH required, on a free port."""
    server = SmtpServer()
    server.handler = handler
    server.controller.loop.close()
    options: dict[str, Any] = {
        "authenticator": login_checker(user, password),
        "auth_require_tls": True,
        "auth_required": True,
    }
    if implicit:
        # aiosmtpd cannot tell a session began in TLS: AUTH is offered, not required.
        options.update(ssl_context=tls.server, auth_require_tls=False, auth_required=False)
    else:
        options.update(tls_context=tls.server, require_starttls=True)
    server.controller = Controller(handler, hostname="127.0.0.1", port=server.port, **options)
    return server.start()
