"""The local mail capture: a real SMTP server that files every mail in ``captured_mails``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from courrier.channels.capture import LocalCapture
from courrier.channels.email import SmtpSender
from courrier.clock import ManualClock
from courrier.errors import ConfigurationError
from courrier.store.schema import captured_mails
from tests.support import factories


@pytest.fixture
def capture(engine: Engine) -> Iterator[LocalCapture]:
    capture = LocalCapture(engine)
    capture.start()
    yield capture
    capture.stop()


def captured(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(captured_mails).order_by(captured_mails.c.id))
        return [dict(row._mapping) for row in rows]


def mail(message_id: str, subject: str = "Booking confirmed") -> bytes:
    return (
        f"From: club@courrier.test\r\nTo: member@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\n\r\nSee you tomorrow.\r\n"
    ).encode()


def test_a_mail_for_a_known_message_is_kept_under_its_tenant(
    engine: Engine, capture: LocalCapture
) -> None:
    clock = ManualClock()
    [message_id] = factories.seed(engine, 1, now=clock())
    row = factories.message(engine, message_id)
    sender = SmtpSender(capture.target, pool_size=1, timeout=5)
    data = mail(row["message_id_header"], "=?utf-8?q?R=C3=A9servation?= confirmed")
    reply = sender.send("club@courrier.test", ["member@example.test"], data)
    sender.close()
    assert reply.startswith("250")
    [kept] = captured(engine)
    assert kept["tenant_id"] == row["tenant_id"]
    assert kept["message_id_header"] == row["message_id_header"]
    assert kept["subject_line"] == "Réservation confirmed"
    assert kept["envelope_from"] == "club@courrier.test"
    assert kept["recipients"] == ["member@example.test"]
    assert kept["raw"] == data


def test_a_mail_nobody_planned_is_kept_without_a_tenant(
    engine: Engine, capture: LocalCapture
) -> None:
    sender = SmtpSender(capture.target, pool_size=1, timeout=5)
    sender.send("someone@example.test", ["a@example.test", "b@example.test"], mail("<x@elsewhere>"))
    sender.close()
    [kept] = captured(engine)
    assert kept["tenant_id"] is None
    assert kept["recipients"] == ["a@example.test", "b@example.test"]


def test_a_taken_port_is_one_line_saying_what_to_change(
    engine: Engine, capture: LocalCapture
) -> None:
    second = LocalCapture(engine, port=capture.port)
    with pytest.raises(ConfigurationError, match="COURRIER_CAPTURE_PORT"):
        second.start()
