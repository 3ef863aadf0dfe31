"""TLS and STARTTLS against a Dovecot with a certificate from a test CA."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from courrier.inbound.connection import MailboxAccess, MailboxError, check_mailbox
from tests.support.dovecot import Dovecot, MailboxUser, make_certificates


@pytest.fixture(scope="module")
def tls_dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dovecot, Path]]:
    ca, cert, key = make_certificates(tmp_path_factory.mktemp("certificates"))
    server = Dovecot(tls=(cert, key)).start()
    yield server, ca
    server.cleanup()


@pytest.fixture
def trusted(tls_dovecot: tuple[Dovecot, Path], monkeypatch: pytest.MonkeyPatch) -> Dovecot:
    """The test CA is trusted, as a public CA is by the system."""
    server, ca = tls_dovecot
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    return server


def access(user: MailboxUser, port: int, security: str, host: str = "127.0.0.1") -> MailboxAccess:
    loopback = (ipaddress.ip_network("127.0.0.0/8"),)  # Dovecot listens there
    return MailboxAccess(
        host, port, security, user.username, user.password, ("INBOX",), 5.0, loopback
    )


def test_tls_and_starttls_log_in_to_a_trusted_server(trusted: Dovecot) -> None:
    user = trusted.add_user()
    assert check_mailbox(access(user, trusted.tls_port, "tls")) == ["INBOX: 0 messages"]
    assert check_mailbox(access(user, trusted.port, "starttls", host="localhost")) == [
        "INBOX: 0 messages"
    ]


def test_a_certificate_from_an_unknown_authority_is_a_tls_failure(
    tls_dovecot: tuple[Dovecot, Path],
) -> None:
    server, _ = tls_dovecot
    user = server.add_user()
    for port, security in ((server.tls_port, "tls"), (server.port, "starttls")):
        with pytest.raises(MailboxError) as failure:
            check_mailbox(access(user, port, security))
        assert failure.value.reason == "tls_failure"
        assert "certificate verify failed" in failure.value.message
