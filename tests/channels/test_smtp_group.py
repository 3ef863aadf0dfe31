"""Groups of mails on one connection, pipelined across mails: one result per mail, whatever happens.

Against aiosmtpd servers that refuse or hang up at a chosen mail, and
against Postfix's ``smtp-sink`` (PIPELINING, as in production).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench.sink import SMTP_SINK, SmtpSink

from courrier.channels.email import Mail, SmtpSender
from courrier.channels.smtp_transaction import Accepted
from courrier.errors import PermanentDeliveryError, TransientDeliveryError
from courrier.settings import parse_smtp_url
from tests.channels.servers import CountingHandler, serve
from tests.support.smtp import SmtpServer


def mail(n: int, *recipients: str) -> Mail:
    content = (
        f"From: club@courrier.test\r\nTo: m{n}@example.test\r\nSubject: Mail {n}\r\n"
        f"Message-ID: <{n}@courrier.test>\r\n\r\n.line with a dot\r\nMail {n}\r\n"
    ).encode()
    return (f"bounces+{n}@courrier.test", list(recipients) or [f"m{n}@example.test"], content)


def subjects(server: SmtpServer) -> list[str]:
    return [str(r.message["Subject"]) for r in server.received]


class DroppingHandler(CountingHandler):
    """Hangs up, without a reply, on receiving the content of mail number ``drop_at`` (from 1)."""

    def __init__(self, drop_at: int, *, pipelining: bool) -> None:
        super().__init__(pipelining=pipelining)
        self.drop_at = drop_at
        self.contents = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.contents += 1
            drop = self.contents == self.drop_at
        if drop:
            server.transport.abort()  # no reply: the content may or may not have been taken
            return "451 never seen"
        return await super().handle_DATA(server, session, envelope)


class SenderRefusingHandler(CountingHandler):
    """Refuses one envelope sender at MAIL FROM."""

    def __init__(self, refused: str, *, pipelining: bool) -> None:
        super().__init__(pipelining=pipelining)
        self.refused_sender = refused

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if address == self.refused_sender:
            return "553 5.7.1 Sender address rejected"
        return await super().handle_MAIL(server, session, envelope, address, mail_options)


@pytest.fixture(params=[False, True], ids=["stepwise", "pipelined"])
def pipelining(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def counting(pipelining: bool) -> Iterator[tuple[SmtpServer, CountingHandler]]:
    handler = CountingHandler(pipelining=pipelining)
    server = serve(handler)
    yield server, handler
    server.stop()


def send(server: SmtpServer, mails: list[Mail], **options: Any) -> list[Any]:
    sender = SmtpSender(parse_smtp_url(server.url), pool_size=1, timeout=5.0)
    try:
        return sender.deliver_many(mails, **options)
    finally:
        sender.close()


def test_a_group_leaves_in_order_on_one_connection(
    counting: tuple[SmtpServer, CountingHandler],
) -> None:
    server, handler = counting
    results = send(server, [mail(n) for n in range(5)])
    assert all(isinstance(r, Accepted) and r.reply.startswith("250") for r in results)
    assert subjects(server) == [f"Mail {n}" for n in range(5)]
    assert server.received[0].raw.split(b"\r\n\r\n", 1)[1] == b".line with a dot\r\nMail 0\r\n"
    assert handler.sessions == 1


def test_a_refused_content_in_the_middle_fails_that_mail_alone(
    counting: tuple[SmtpServer, CountingHandler],
) -> None:
    server, handler = counting
    server.script("250 ok", "554 5.7.1 Message rejected")  # the first DATA ok but not kept
    results = send(server, [mail(n) for n in range(4)])
    assert isinstance(results[0], Accepted) and isinstance(results[2], Accepted)
    assert isinstance(results[1], PermanentDeliveryError)
    assert (results[1].code, results[1].reply) == (554, "5.7.1 Message rejected")
    assert isinstance(results[3], Accepted)
    assert subjects(server) == ["Mail 2", "Mail 3"]
    assert handler.sessions == 1


def test_a_transient_refusal_in_the_middle_is_transient_for_that_mail_alone(
    counting: tuple[SmtpServer, CountingHandler],
) -> None:
    server, handler = counting
    server.script("451 4.3.0 Try again later")
    results = send(server, [mail(n) for n in range(3)])
    assert isinstance(results[0], TransientDeliveryError) and results[0].code == 451
    assert subjects(server) == ["Mail 1", "Mail 2"]
    assert handler.sessions == 1


def test_refused_recipients_and_senders_fail_their_own_mail_only(pipelining: bool) -> None:
    handler = SenderRefusingHandler("bounces+1@courrier.test", pipelining=pipelining)
    handler.refused["gone@example.test"] = "550 5.1.1 User unknown"
    server = serve(handler)
    try:
        results = send(
            server,
            [
                mail(0),
                mail(1),
                mail(2, "gone@example.test"),
                mail(3, "x@example.test", "gone@example.test"),
                mail(4),
            ],
        )
    finally:
        server.stop()
    assert isinstance(results[0], Accepted) and isinstance(results[4], Accepted)
    assert isinstance(results[1], PermanentDeliveryError) and results[1].code == 553
    assert isinstance(results[2], PermanentDeliveryError) and results[2].code == 550
    partial = results[3]
    assert isinstance(partial, Accepted)
    assert [(a, e.code) for a, e in partial.refused] == [("gone@example.test", 550)]
    assert subjects(server) == ["Mail 0", "Mail 3", "Mail 4"]
    assert handler.sessions == 1


def test_a_connection_dropped_mid_group_fails_the_unacknowledged_mail_and_sends_the_rest(
    pipelining: bool,
) -> None:
    handler = DroppingHandler(drop_at=3, pipelining=pipelining)
    server = serve(handler)
    try:
        results = send(server, [mail(n) for n in range(6)])
    finally:
        server.stop()
    dropped = results[2]
    assert isinstance(dropped, TransientDeliveryError) and dropped.code is None
    assert "connection dropped" in dropped.reply
    assert [isinstance(r, Accepted) for r in results] == [True, True, False, True, True, True]
    assert subjects(server) == ["Mail 0", "Mail 1", "Mail 3", "Mail 4", "Mail 5"]
    assert handler.sessions == 2


def test_stop_finishes_the_mail_in_flight_and_leaves_the_rest_unoffered(
    counting: tuple[SmtpServer, CountingHandler],
) -> None:
    server, _ = counting
    asked = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 2

    results = send(server, [mail(n) for n in range(5)], stop=stop)
    assert [isinstance(r, Accepted) for r in results[:2]] == [True, True]
    assert results[2:] == [None, None, None]
    assert subjects(server) == ["Mail 0", "Mail 1"]


def test_a_mail_without_recipients_is_permanent_and_the_others_go(
    counting: tuple[SmtpServer, CountingHandler],
) -> None:
    server, _ = counting
    empty = (mail(1)[0], [], mail(1)[2])
    results = send(server, [mail(0), empty, mail(2)])
    assert isinstance(results[1], PermanentDeliveryError)
    assert subjects(server) == ["Mail 0", "Mail 2"]


def test_a_dead_idle_connection_is_replaced_and_the_group_goes_on_a_new_one(
    pipelining: bool,
) -> None:
    first = serve(CountingHandler(pipelining=pipelining))
    sender = SmtpSender(parse_smtp_url(first.url), pool_size=1, timeout=5.0)
    assert isinstance(sender.deliver_many([mail(0)])[0], Accepted)
    first.stop()  # closes the idle pooled connection
    second = serve(CountingHandler(pipelining=pipelining), port=first.port)
    try:
        results = sender.deliver_many([mail(1), mail(2)])
    finally:
        sender.close()
        second.stop()
    assert all(isinstance(r, Accepted) for r in results)
    assert subjects(second) == ["Mail 1", "Mail 2"]


def test_an_unreachable_server_fails_every_mail_as_transient() -> None:
    sender = SmtpSender(parse_smtp_url("smtp://127.0.0.1:9"), pool_size=1, timeout=2.0)
    results = sender.deliver_many([mail(0), mail(1)])
    assert all(isinstance(r, TransientDeliveryError) and "cannot reach" in r.reply for r in results)


needs_sink = pytest.mark.skipif(
    shutil.which("smtp-sink") is None and not Path(SMTP_SINK).exists(),
    reason="Postfix's smtp-sink is not installed",
)


@needs_sink
def test_smtp_sink_takes_a_pipelined_group_on_one_session() -> None:
    with SmtpSink() as sink:
        sender = SmtpSender(
            parse_smtp_url(f"smtp://{sink.host}:{sink.port}"), pool_size=1, timeout=5
        )
        results = sender.deliver_many([mail(n) for n in range(50)])
        sender.close()
        assert sink.wait_for_messages(50) == 50
    assert all(isinstance(r, Accepted) for r in results)


class HangingUpSink(SmtpSink):
    """smtp-sink hanging up at every end of data: without a reply (-q) or after a 421 (-Q)."""

    def __init__(self, option: str) -> None:
        super().__init__()
        self.option = option

    def command(self) -> list[str]:
        argv = super().command()
        return [*argv[:-2], self.option, ".", *argv[-2:]]


@needs_sink
@pytest.mark.parametrize(("option", "code"), [("-q", None), ("-Q", 421)])
def test_smtp_sink_hanging_up_at_each_end_of_data_fails_each_mail_as_transient(
    option: str, code: int | None
) -> None:
    sink = HangingUpSink(option)
    with sink:
        sender = SmtpSender(
            parse_smtp_url(f"smtp://{sink.host}:{sink.port}"), pool_size=1, timeout=5
        )
        results = sender.deliver_many([mail(n) for n in range(3)])
        sender.close()
    assert all(isinstance(r, TransientDeliveryError) and r.code == code for r in results), results
