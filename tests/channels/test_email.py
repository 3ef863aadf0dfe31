"""The SMTP sender against real SMTP servers on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from courrier.channels.email import SmtpSender
from courrier.errors import ConfigurationError, PermanentDeliveryError, TransientDeliveryError
from courrier.settings import parse_smtp_url
from tests.channels.servers import (
    CountingHandler,
    self_signed_tls,
    serve,
    serve_tls,
    silent_server,
)
from tests.support.services import free_port
from tests.support.smtp import SmtpServer

MAIL = (
    b"From: club@courrier.test\r\nTo: member@example.test\r\nSubject: Hello\r\n"
    b"Message-ID: <one@courrier.test>\r\n\r\nBonjour, \xc3\xa7a vole.\r\n"
)


MODES = pytest.mark.parametrize("pipelining", [False, True], ids=["stepwise", "pipelined"])


@pytest.fixture(params=[False, True], ids=["stepwise", "pipelined"])
def counting(request: pytest.FixtureRequest) -> Iterator[tuple[SmtpServer, CountingHandler]]:
    """A recording server, once without and once with PIPELINING offered."""
    handler = CountingHandler(pipelining=request.param)
    server = serve(handler)
    yield server, handler
    server.stop()


def sender_for(server: SmtpServer, pool_size: int = 2, timeout: float = 5.0) -> SmtpSender:
    return SmtpSender(parse_smtp_url(server.url), pool_size=pool_size, timeout=timeout)


def test_send_delivers_the_bytes_and_returns_the_server_reply(
    counting: tuple[SmtpServer, CountingHandler],
) -> None:
    server, _ = counting
    sender = sender_for(server)
    reply = sender.send("bounce@courrier.test", ["member@example.test"], MAIL)
    sender.close()
    assert reply == "250 2.0.0 Ok: queued"
    [received] = server.received
    assert received.envelope_from == "bounce@courrier.test"
    assert received.recipients == ["member@example.test"]
    assert received.raw.replace(b"\r\n", b"\n") == MAIL.replace(b"\r\n", b"\n")


def test_lines_starting_with_a_dot_arrive_intact(
    counting: tuple[SmtpServer, CountingHandler],
) -> None:
    server, _ = counting
    mail = MAIL + b".\r\n..two dots\r\n.one dot"  # and no final line ending
    sender = sender_for(server)
    sender.send("a@courrier.test", ["b@example.test"], mail)
    sender.close()
    [received] = server.received
    assert received.raw.replace(b"\r\n", b"\n") == mail.replace(b"\r\n", b"\n") + b"\n"


def test_connections_are_reused_and_bounded_by_the_pool(
    counting: tuple[SmtpServer, CountingHandler],
) -> None:
    server, handler = counting
    sender = sender_for(server, pool_size=3)
    threads = [
        threading.Thread(
            target=lambda: [
                sender.send("a@courrier.test", ["b@example.test"], MAIL) for _ in range(10)
            ]
        )
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sender.close()
    assert len(server.received) == 60
    assert 1 <= handler.sessions <= 3


def test_a_4xx_reply_is_transient_and_the_connection_carries_the_next_mail(
    counting: tuple[SmtpServer, CountingHandler],
) -> None:
    server, handler = counting
    server.script("451 4.3.0 Try again later")
    sender = sender_for(server, pool_size=1)
    with pytest.raises(TransientDeliveryError) as caught:
        sender.send("a@courrier.test", ["b@example.test"], MAIL)
    assert caught.value.code == 451
    assert caught.value.reply == "4.3.0 Try again later"
    assert sender.send("a@courrier.test", ["b@example.test"], MAIL).startswith("250")
    sender.close()
    assert handler.sessions == 1


def test_a_5xx_reply_is_permanent_with_code_and_reply(
    counting: tuple[SmtpServer, CountingHandler],
) -> None:
    server, _ = counting
    server.script("550 5.1.1 <b@example.test>: User unknown")
    sender = sender_for(server)
    with pytest.raises(PermanentDeliveryError) as caught:
        sender.send("a@courrier.test", ["b@example.test"], MAIL)
    sender.close()
    assert caught.value.code == 550
    assert "User unknown" in caught.value.reply
    assert server.received == []


@MODES
def test_every_recipient_refused_is_permanent_and_the_next_mail_still_goes(
    pipelining: bool,
) -> None:
    handler = CountingHandler(
        refuse_rcpt="550 5.1.1 Recipient address rejected", pipelining=pipelining
    )
    server = serve(handler)
    sender = sender_for(server, pool_size=1)
    try:
        with pytest.raises(PermanentDeliveryError) as caught:
            sender.send("a@courrier.test", ["b@example.test", "c@example.test"], MAIL)
        handler.refuse_rcpt = None
        assert sender.send("a@courrier.test", ["b@example.test"], MAIL).startswith("250")
    finally:
        sender.close()
        server.stop()
    assert caught.value.code == 550
    assert "Recipient address rejected" in caught.value.reply
    assert [r.recipients for r in server.received] == [["b@example.test"]]
    assert handler.sessions == 1


def test_a_refused_connection_is_transient() -> None:
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{free_port()}"), pool_size=1, timeout=2)
    with pytest.raises(TransientDeliveryError, match="connection refused"):
        sender.send("a@courrier.test", ["b@example.test"], MAIL)
    # The failed connection gave its slot back: the next attempt fails the same way, not a hang.
    with pytest.raises(TransientDeliveryError, match="connection refused"):
        sender.send("a@courrier.test", ["b@example.test"], MAIL)


def test_a_server_that_never_answers_times_out_as_transient() -> None:
    with silent_server() as port:
        sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{port}"), pool_size=1, timeout=0.3)
        with pytest.raises(TransientDeliveryError, match="timed out"):
            sender.send("a@courrier.test", ["b@example.test"], MAIL)


@MODES
def test_a_connection_dropped_while_idle_is_replaced_without_a_failure(pipelining: bool) -> None:
    first = serve(CountingHandler(pipelining=pipelining))
    sender = sender_for(first, pool_size=1)
    sender.send("a@courrier.test", ["b@example.test"], MAIL)
    first.stop()  # the server goes away, closing the idle pooled connection
    second = serve(CountingHandler(pipelining=pipelining), port=first.port)
    try:
        assert sender.send("a@courrier.test", ["b@example.test"], MAIL).startswith("250")
    finally:
        sender.close()
        second.stop()
    assert len(second.received) == 1


def test_check_says_in_one_line_when_the_server_cannot_be_reached() -> None:
    port = free_port()
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{port}"), pool_size=1, timeout=2)
    with pytest.raises(ConfigurationError) as caught:
        sender.check()
    assert (
        str(caught.value) == f"cannot reach the SMTP server at 127.0.0.1:{port}: connection refused"
    )


def test_check_passes_against_a_live_server(
    counting: tuple[SmtpServer, CountingHandler],
) -> None:
    server, handler = counting
    sender_for(server).check()
    assert handler.sessions == 1


@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
def test_tls_and_login_are_used_as_the_url_says(scheme: str, tmp_path: Path) -> None:
    tls = self_signed_tls(tmp_path)
    handler = CountingHandler()
    server = serve_tls(handler, tls, implicit=scheme == "smtps", user="club", password="s3cret")
    target = parse_smtp_url(f"{scheme}://club:s3cret@127.0.0.1:{server.port}")
    sender = SmtpSender(target, pool_size=1, timeout=5, tls_context=tls.client)
    try:
        sender.check()
        assert sender.send("a@courrier.test", ["b@example.test"], MAIL).startswith("250")
    finally:
        sender.close()
        server.stop()
    assert len(server.received) == 1


def test_a_refused_login_is_one_line_from_check(tmp_path: Path) -> None:
    tls = self_signed_tls(tmp_path)
    server = serve_tls(CountingHandler(), tls, implicit=False, user="club", password="s3cret")
    target = parse_smtp_url(f"smtp+starttls://club:wrong@127.0.0.1:{server.port}")
    sender = SmtpSender(target, pool_size=1, timeout=5, tls_context=tls.client)
    try:
        with pytest.raises(ConfigurationError, match="refused the login: 535"):
            sender.check()
        with pytest.raises(TransientDeliveryError) as caught:  # retried: the setting may be fixed
            sender.send("a@courrier.test", ["b@example.test"], MAIL)
        assert caught.value.code == 535
    finally:
        sender.close()
        server.stop()


def test_an_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    tls = self_signed_tls(tmp_path)
    server = serve_tls(CountingHandler(), tls, implicit=True, user="club", password="s3cret")
    sender = SmtpSender(
        parse_smtp_url(f"smtps://club:s3cret@127.0.0.1:{server.port}"), pool_size=1, timeout=5
    )
    try:
        with pytest.raises(ConfigurationError, match="TLS failure"):
            sender.check()
    finally:
        sender.close()
        server.stop()


def test_a_refused_sender_is_permanent_and_the_connection_carries_on(
    counting: tuple[SmtpServer, CountingHandler],
) -> None:
    server, handler = counting
    handler.refuse_mail = "553 5.7.1 <a@courrier.test>: Sender address rejected"
    sender = sender_for(server, pool_size=1)
    try:
        with pytest.raises(PermanentDeliveryError) as caught:
            sender.send("a@courrier.test", ["b@example.test"], MAIL)
        handler.refuse_mail = None
        assert sender.send("a@courrier.test", ["b@example.test"], MAIL).startswith("250")
    finally:
        sender.close()
    assert (caught.value.code, caught.value.reply) == (
        553,
        "5.7.1 <a@courrier.test>: Sender address rejected",
    )
    assert handler.sessions == 1


def test_a_mail_goes_to_the_recipients_that_were_accepted(
    counting: tuple[SmtpServer, CountingHandler],
) -> None:
    server, handler = counting
    handler.refused["gone@example.test"] = "550 5.1.1 User unknown"
    sender = sender_for(server)
    try:
        sender.send("a@courrier.test", ["b@example.test", "gone@example.test"], MAIL)
    finally:
        sender.close()
    assert [r.recipients for r in server.received] == [["b@example.test"]]


def test_a_temporarily_refused_recipient_alone_is_transient(
    counting: tuple[SmtpServer, CountingHandler],
) -> None:
    server, handler = counting
    handler.refused["full@example.test"] = "452 4.2.2 Mailbox full"
    sender = sender_for(server)
    try:
        with pytest.raises(TransientDeliveryError) as caught:
            sender.send("a@courrier.test", ["full@example.test"], MAIL)
    finally:
        sender.close()
    assert caught.value.code == 452
    assert server.received == []
