"""A real bounce: Postfix refuses a mail Courrier sent, its DSN lands in the mailbox, Courrier reads it."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.settings import Settings
from courrier.store.schema import bounce_reports, inbound_mails
from courrier.store.tenants import Tenant
from tests.inbound.conftest import add_contact, add_mailbox, read_once
from tests.support.dovecot import Dovecot, MailboxUser
from tests.support.factories import insert_message, message_row
from tests.support.postfix import Postfix


@pytest.fixture(scope="module")
def bounce_box(dovecot: Dovecot) -> Iterator[tuple[Postfix, MailboxUser]]:
    """Postfix delivering every mail for club.example into one Dovecot mailbox."""
    user = dovecot.add_user("bounces@club.example")
    postfix = Postfix(dovecot.root / "mail", dovecot.uid, dovecot.gid, user.username).start()
    yield postfix, user
    postfix.cleanup()


def test_a_postfix_bounce_is_stored_as_a_bounce_linked_to_the_sent_message(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    bounce_box: tuple[Postfix, MailboxUser],
    clock: ManualClock,
) -> None:
    postfix, user = bounce_box
    add_contact(engine, tenant, "m-9", "gone@hard.test")
    with engine.begin() as conn:
        row = message_row(tenant.id, 1, now=clock(), address="gone@hard.test")
        sent = insert_message(conn, row)
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = user.username, "gone@hard.test", "Your booking"
    mail["Message-ID"] = row["message_id_header"]
    mail.set_content("Your booking is confirmed.")
    with smtplib.SMTP("127.0.0.1", postfix.smtp_port, timeout=10) as smtp:
        smtp.send_message(mail, from_addr=user.username, to_addrs=["gone@hard.test"])
    deadline = time.monotonic() + 15
    while dovecot.count(user) == 0:
        assert time.monotonic() < deadline, postfix.log()[-1000:]
        time.sleep(0.05)

    read_once(engine, inbound_settings, add_mailbox(engine, inbound_settings, tenant, user))
    with engine.connect() as conn:
        [stored] = [dict(r._mapping) for r in conn.execute(select(inbound_mails))]
        reports: list[dict[str, Any]] = [
            dict(r._mapping) for r in conn.execute(select(bounce_reports))
        ]
    assert (stored["kind"], stored["contact_id"], stored["reply_to_message_id"]) == (
        "bounce",
        None,
        sent,
    )
    assert [(r["recipient"], r["action"], r["status"], r["message_id"]) for r in reports] == [
        ("gone@hard.test", "failed", "5.1.1", sent)
    ]
    assert "User unknown" in reports[0]["diagnostic"]
