"""Connecting to an IMAP mailbox, with every failure said in plain words.

imapclient raises socket, SSL and IMAP errors of many kinds; they are
translated here, where they enter Courrier, into :class:`MailboxError` with
a ``reason`` a person (and the "test connection" call) can act on: host not
found, connection refused, TLS failure, login refused, folder missing,
timed out, or an address a tenant may not reach (``address_not_allowed``,
see :mod:`courrier.inbound.allowed_hosts`).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import imapclient  # type: ignore[import-untyped]
from imapclient import imap4, tls
from imapclient.exceptions import IMAPClientError, LoginError  # type: ignore[import-untyped]

from courrier.errors import CourrierError, ValidationError
from courrier.inbound.allowed_hosts import AddressNotAllowed, IPNetwork, allowed_address

SECURITIES = ("tls", "starttls", "plain")
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


class MailboxError(CourrierError):
    """A mailbox could not be reached or read; ``reason`` is a short code, the message says more."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class MailboxAccess:
    """Where and how to log in to one mailbox (password in clear, in memory only)."""

    host: str
    port: int
    security: str  # tls, starttls, plain
    username: str
    password: str
    folders: Sequence[str] = ("INBOX",)
    timeout: float = 30.0
    allowed_networks: tuple[
        IPNetwork, ...
    ] = ()  # internal networks the operator lets tenants reach

    def __repr__(self) -> str:
        return f"MailboxAccess({self.security}://{self.username}:***@{self.host}:{self.port})"


def check_security(host: str, security: str) -> None:
    """Refuse an unknown security mode, and plain IMAP anywhere but loopback."""
    if security not in SECURITIES:
        raise ValidationError(f"must be one of {', '.join(SECURITIES)}", field="security")
    if security == "plain" and host.strip().lower() not in LOOPBACK_HOSTS:
        raise ValidationError(
            "plain IMAP sends the password in clear: only allowed on loopback; use tls or starttls",
            field="security",
        )


def _translate(exc: BaseException, access: MailboxAccess) -> MailboxError:
    where = f"{access.host}:{access.port}"
    if isinstance(exc, socket.gaierror):
        return MailboxError("host_not_found", f"host not found: {access.host}")
    if isinstance(exc, ConnectionRefusedError):
        return MailboxError(
            "connection_refused", f"connection refused by {where}: is IMAP served on this port?"
        )
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return MailboxError("tls_failure", f"TLS failure with {where}: {exc}")
    if isinstance(exc, LoginError):
        return MailboxError(
            "login_refused",
            f"login refused for {access.username}: check the user and the (app) password",
        )
    if isinstance(exc, TimeoutError | socket.timeout):
        return MailboxError("timeout", f"{where} did not answer within {access.timeout:g} s")
    if isinstance(exc, OSError):
        return MailboxError("network", f"network error with {where}: {exc}")
    return MailboxError("protocol", f"IMAP error from {where}: {exc}")


class _PlainToAddress(imap4.IMAP4WithTimeout):  # type: ignore[misc]
    """Plain IMAP (STARTTLS later) to a checked address; ``host`` stays the name TLS verifies."""

    def __init__(self, address: str, host: str, port: int, timeout: float | None) -> None:
        self.address = address
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        chosen = timeout if timeout is not None else self._timeout
        return socket.create_connection((self.address, self.port), chosen)


class _TlsToAddress(tls.IMAP4_TLS):  # type: ignore[misc]
    """IMAP over TLS to a checked address, the certificate verified against the host name."""

    def __init__(
        self, address: str, host: str, port: int, context: ssl.SSLContext, timeout: float | None
    ) -> None:
        self.address = address
        super().__init__(host, port, context, timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        chosen = timeout if timeout is not None else self._timeout
        sock = socket.create_connection((self.address, self.port), timeout=chosen)
        return tls.wrap_socket(sock, self.ssl_context, self.host)  # type: ignore[no-any-return]


class _ClientToAddress(imapclient.IMAPClient):  # type: ignore[misc]
    """An IMAPClient that connects to the address that was checked, not to a new lookup."""

    def __init__(self, address: str, host: str, **options: object) -> None:
        self.address = address
        super().__init__(host, **options)

    def _create_IMAP4(self) -> imap4.IMAP4WithTimeout | tls.IMAP4_TLS:
        timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return _TlsToAddress(self.address, self.host, self.port, self.ssl_context, timeout)
        return _PlainToAddress(self.address, self.host, self.port, timeout)


def reachable_address(access: MailboxAccess) -> str:
    """The checked address to connect to; a :class:`MailboxError` if the host may not be reached."""
    try:
        return allowed_address(access.host, access.port, access.allowed_networks)
    except AddressNotAllowed as exc:
        raise MailboxError("address_not_allowed", str(exc)) from exc
    except OSError as exc:
        raise _translate(exc, access) from exc


def open_client(access: MailboxAccess) -> imapclient.IMAPClient:
    """A logged-in client; any failure is a :class:`MailboxError`."""
    check_security(access.host, access.security)
    address = reachable_address(access)
    context = ssl.create_default_context() if access.security != "plain" else None
    try:
        client = _ClientToAddress(
            address,
            access.host,
            port=access.port,
            ssl=access.security == "tls",
            ssl_context=context,
            timeout=access.timeout,
        )
    except (OSError, IMAPClientError) as exc:
        raise _translate(exc, access) from exc
    try:
        if access.security == "starttls":
            client.starttls(context)
        client.login(access.username, access.password)
    except (OSError, IMAPClientError) as exc:
        _close_quietly(client)
        raise _translate(exc, access) from exc
    return client


def _close_quietly(client: imapclient.IMAPClient) -> None:
    with suppress(OSError, IMAPClientError):
        client.shutdown()


@contextmanager
def connected(access: MailboxAccess) -> Iterator[imapclient.IMAPClient]:
    """A logged-in client for the block; logged out (or dropped) after it."""
    client = open_client(access)
    try:
        yield client
    finally:
        try:
            client.logout()
        except (OSError, IMAPClientError):
            _close_quietly(client)


def translate_errors(access: MailboxAccess, exc: BaseException) -> MailboxError:
    """The :class:`MailboxError` for an error met while reading ``access``."""
    return exc if isinstance(exc, MailboxError) else _translate(exc, access)


def check_mailbox(access: MailboxAccess) -> list[str]:
    """Log in and open every folder; the folders' message counts, in words.

    Raises :class:`MailboxError` saying what is wrong (``folder_missing``
    names the folder).
    """
    found = []
    with connected(access) as client:
        for folder in access.folders:
            try:
                status = client.folder_status(folder, [b"MESSAGES"])
            except IMAPClientError as exc:
                raise MailboxError("folder_missing", f"folder missing: {folder!r}") from exc
            found.append(f"{folder}: {status.get(b'MESSAGES', 0)} messages")
    return found
