"""Real bounces: Postfix refuses what Courrier sent, its DSNs land in Dovecot, the inbox reader
files them, the feedback loop bounces the right message and counts against the right address.

The dispatcher sends into Postfix with its per-message bounce address,
``bounces+<VERP token>@club.example``, so each DSN names its message even
when the address got several. Mail that needs an envelope Courrier would
not make (a forged token, a success notification) is sent with smtplib.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from courrier.api.app import create_app
from courrier.channels.email import SmtpSender
from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from courrier.engine.feedback import FeedbackLoop
from courrier.engine.outgoing import mail_of
from courrier.render.links import LinkSigner
from courrier.render.mime import build_mime
from courrier.settings import Settings, parse_smtp_url
from courrier.store import health, timeline, webhooks
from courrier.store.schema import (
    address_audit,
    address_errors,
    inbound_mails,
    messages,
    webhook_deliveries,
)
from courrier.store.tenants import Tenant, create_api_key, create_tenant
from tests.inbound.conftest import add_mailbox, read_once
from tests.support import factories
from tests.support.dispatching import dispatcher_for
from tests.support.dovecot import Dovecot, MailboxUser
from tests.support.postfix import Postfix
from tests.support.smtp import SmtpServer

#: a deferred mail gets its "delayed" DSN on its first retry, a second or two later
QUICK_DELAY = {
    "delay_warning_time": "1s",
    "queue_run_delay": "1s",
    "minimal_backoff_time": "1s",
    "maximal_backoff_time": "2s",
}


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot().start()
    yield server
    server.cleanup()


@pytest.fixture
def bounce_box(dovecot: Dovecot) -> Iterator[tuple[Postfix, MailboxUser]]:
    """A Postfix of this test's own, delivering all mail for club.example into one mailbox."""
    user = dovecot.add_user()
    postfix = Postfix(
        dovecot.root / "mail", dovecot.uid, dovecot.gid, user.username, QUICK_DELAY
    ).start()
    yield postfix, user
    postfix.cleanup()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def feedback_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The suite's settings (sending to the recorder) plus the inbox reader's."""
    return settings.model_copy(
        update={
            "documents_dir": tmp_path / "documents",
            "imap_allowed_networks": "127.0.0.0/8",
            "imap_timeout": 5.0,
            "imap_retry_seconds": 0.1,
        }
    )


@pytest.fixture
def tenant(engine: Engine, clock: ManualClock) -> Tenant:
    with engine.begin() as conn:
        return create_tenant(conn, "Aeroclub", from_email="noreply@club.example", now=clock())


@pytest.fixture
def dispatcher(
    engine: Engine, feedback_settings: Settings, clock: ManualClock
) -> Iterator[Dispatcher]:
    with dispatcher_for(engine, feedback_settings, clock, "w", pool_size=2) as worker:
        yield worker


def sent_message(engine: Engine, tenant: Tenant, clock: ManualClock, address: str) -> int:
    row = factories.message_row(
        tenant.id, 1, now=clock(), address=address, status="sent", sent_at=clock()
    )
    row["from_addr"] = tenant.from_email
    with engine.begin() as conn:
        return factories.insert_message(conn, row)


def due_message(engine: Engine, tenant: Tenant, clock: ManualClock, address: str) -> int:
    row = factories.message_row(tenant.id, 1, now=clock(), address=address)
    row["from_addr"] = tenant.from_email
    with engine.begin() as conn:
        return factories.insert_message(conn, row)


def send_due_through(
    postfix: Postfix, engine: Engine, settings: Settings, clock: ManualClock
) -> int:
    """Courrier's own dispatcher sends the due messages into Postfix (VERP envelope sender)."""
    sender = SmtpSender(
        parse_smtp_url(f"smtp://127.0.0.1:{postfix.smtp_port}"), pool_size=2, timeout=10
    )
    dispatcher = Dispatcher(engine, settings, sender, clock=clock, worker_id="to-postfix")
    try:
        return dispatcher.run_once()
    finally:
        dispatcher.close()
        sender.close()


def send_through(postfix: Postfix, engine: Engine, settings: Settings, message_id: int) -> None:
    """The message's mail, from its VERP bounce address, into Postfix."""
    row = factories.message(engine, message_id)
    token = LinkSigner(settings.signing_key(), settings.base_url).verp_token(message_id)
    with smtplib.SMTP("127.0.0.1", postfix.smtp_port, timeout=10) as smtp:
        smtp.sendmail(
            f"bounces+{token}@club.example",
            [row["address"]],
            build_mime(mail_of(row, row["sent_at"])),
        )


def wait_for_mail(dovecot: Dovecot, user: MailboxUser, count: int, postfix: Postfix) -> None:
    deadline = time.monotonic() + 30
    while dovecot.count(user) < count:
        assert time.monotonic() < deadline, postfix.log()[-2000:]
        time.sleep(0.1)


def apply_inbox(
    engine: Engine, settings: Settings, tenant: Tenant, user: MailboxUser, clock: ManualClock
) -> int:
    """Read the mailbox once (the real IMAP reader), then apply what was filed."""
    read_once(engine, settings, add_mailbox(engine, settings, tenant, user))
    return FeedbackLoop(engine, settings, clock=clock).run_once()


def state(engine: Engine, tenant: Tenant, address: str) -> dict[str, Any]:
    with engine.connect() as conn:
        found = health.get_health(conn, tenant.id, address)
    assert found is not None, f"no health for {address}"
    return found


def test_real_dsns_bounce_the_right_message_then_13_errors_block_and_a_reset_unblocks(
    engine: Engine,
    feedback_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    bounce_box: tuple[Postfix, MailboxUser],
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    clock: ManualClock,
) -> None:
    postfix, user = bounce_box
    with engine.begin() as conn:
        webhooks.create_endpoint(
            conn,
            tenant.id,
            url="https://hooks.example.test/courrier",
            secret_encrypted="not used here",
            event_types=["message.bounced", "address.blocked"],
            description=None,
            now=clock(),
        )
    gone, full, spam = (
        due_message(engine, tenant, clock, a)
        for a in ("gone@hard.test", "full@full.test", "spam@blocked.test")
    )
    assert send_due_through(postfix, engine, feedback_settings, clock) == 3
    clock.advance(timedelta(minutes=1))
    # sent later to the same address and not bounced: the latest, but not the one the DSN names
    later_to_gone = sent_message(engine, tenant, clock, "gone@hard.test")
    wait_for_mail(dovecot, user, 3, postfix)

    assert apply_inbox(engine, feedback_settings, tenant, user, clock) == 3
    assert FeedbackLoop(engine, feedback_settings, clock=clock).run_once() == 0  # applied once
    statuses = {
        i: factories.message(engine, i)["status"] for i in (gone, later_to_gone, full, spam)
    }
    assert statuses == {gone: "bounced", later_to_gone: "sent", full: "bounced", spam: "bounced"}
    with engine.connect() as conn:
        last = timeline.timeline_of(conn, gone)[-1]
        errors = conn.execute(select(address_errors).order_by(address_errors.c.id)).all()
    assert (last["entry"], last["status"]) == ("bounced", "bounced")
    with engine.connect() as conn:
        returned_to = [
            a for t in conn.execute(select(inbound_mails.c.to_addrs)).scalars() for a in t
        ]
    assert len(returned_to) == 3 and all(a.startswith("bounces+") for a in returned_to)
    assert "5.1.1" in last["reason"] and "User unknown" in last["reason"]
    assert {(e.address, e.source, e.status, e.message_id, e.counted) for e in errors} == {
        ("gone@hard.test", "dsn", "5.1.1", gone, True),
        ("full@full.test", "dsn", "5.2.2", full, True),
        ("spam@blocked.test", "dsn", "5.7.1", spam, True),
    }  # the DSNs arrive in any order
    for address in ("gone@hard.test", "full@full.test", "spam@blocked.test"):
        assert (state(engine, tenant, address)["error_count"], address) == (1, address)
    with engine.connect() as conn:
        hooks = conn.execute(
            select(webhook_deliveries.c.event_type, webhook_deliveries.c.message_id)
        )
        assert sorted((str(t), int(i)) for t, i in hooks) == [
            ("message.bounced", i) for i in sorted((gone, full, spam))
        ]

    # twelve more refusals, synchronous this time (550 from the recorder): the 13th blocks
    refused = "550 5.1.1 <gone@hard.test>: Recipient address rejected: User unknown"
    with engine.begin() as conn:
        factories.insert_messages(conn, tenant.id, 12, now=clock(), address="gone@hard.test")
    smtp_server.script(*[refused] * 12)
    assert dispatcher.run_once() == 12
    blocked = state(engine, tenant, "gone@hard.test")
    assert (blocked["error_count"], blocked["blocked"]) == (13, True)
    with engine.connect() as conn:
        hook = conn.execute(
            select(webhook_deliveries.c.payload).where(
                webhook_deliveries.c.event_type == "address.blocked"
            )
        ).scalar_one()
    assert hook["data"]["address"] == "gone@hard.test"

    with engine.begin() as conn:
        [suppressed] = factories.insert_messages(
            conn, tenant.id, 1, now=clock(), address="gone@hard.test"
        )
    dispatcher.run_once()
    row = factories.message(engine, suppressed)
    assert row["status"] == "suppressed"
    assert "gone@hard.test is blocked after 13 errors (last: 550 5.1.1" in row["status_reason"]
    assert "no fallback: the kind allows no other channel" in row["status_reason"]

    with engine.begin() as conn:
        key = create_api_key(conn, tenant.id, now=clock(), label="office")
    with TestClient(create_app(feedback_settings, engine=engine, clock=clock)) as client:
        answer = client.post(
            "/v1/addresses/gone@hard.test/reset",
            json={"reason": "the member fixed the address", "by": "Claire"},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["error_count"], answer.json()["blocked"]) == (0, False)

    with engine.begin() as conn:
        [again] = factories.insert_messages(
            conn, tenant.id, 1, now=clock(), address="gone@hard.test"
        )
    dispatcher.run_once()
    assert factories.message(engine, again)["status"] == "sent"
    [received] = smtp_server.wait_for(1)
    assert received.recipients == ["gone@hard.test"]
    with engine.connect() as conn:
        audit = conn.execute(select(address_audit).order_by(address_audit.c.id)).all()
    assert [(a.action, a.actor) for a in audit] == [
        ("blocked", "courrier"),
        ("reset", "Claire (key office)"),
    ]


def test_a_delayed_dsn_is_noted_on_the_message_and_not_counted(
    engine: Engine,
    feedback_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    bounce_box: tuple[Postfix, MailboxUser],
    clock: ManualClock,
) -> None:
    postfix, user = bounce_box
    waiting = due_message(engine, tenant, clock, "slow@soft.test")
    assert send_due_through(postfix, engine, feedback_settings, clock) == 1
    wait_for_mail(dovecot, user, 1, postfix)

    assert apply_inbox(engine, feedback_settings, tenant, user, clock) == 1
    with engine.connect() as conn:
        [mail] = conn.execute(select(inbound_mails.c.kind)).scalars()
        [error] = conn.execute(select(address_errors)).all()
        last = timeline.timeline_of(conn, waiting)[-1]
        assert health.get_health(conn, tenant.id, "slow@soft.test") is None
    assert mail == "bounce"
    assert factories.message(engine, waiting)["status"] == "sent"
    assert (last["entry"], last["status"]) == ("delayed", "sent")
    assert (error.address, error.status, error.counted, error.message_id) == (
        "slow@soft.test",
        "4.4.1",
        False,
        waiting,
    )


def test_mail_from_an_address_resets_its_count_and_an_auto_reply_does_not(
    engine: Engine,
    feedback_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    clock: ManualClock,
) -> None:
    user = dovecot.add_user()
    with engine.begin() as conn:
        errors = [
            health.AddressError(tenant.id, "ada@example.org", "dsn", 550, "5.2.2", "full", None)
        ] * 3
        health.record_errors(conn, errors, clock())
    away = (
        b"From: Ada <Ada@Example.org>\r\nTo: noreply@club.example\r\nSubject: Out of office\r\n"
        b"Message-ID: <away-1@example.org>\r\nAuto-Submitted: auto-replied\r\n\r\n"
        b"I am away until Monday.\r\n"
    )
    dovecot.append(user, away)
    mailbox = add_mailbox(engine, feedback_settings, tenant, user)
    read_once(engine, feedback_settings, mailbox)
    assert FeedbackLoop(engine, feedback_settings, clock=clock).run_once() == 1
    assert state(engine, tenant, "ada@example.org")["error_count"] == 3

    written = (
        b"From: Ada <Ada@Example.org>\r\nTo: noreply@club.example\r\nSubject: Booking\r\n"
        b"Message-ID: <ada-1@example.org>\r\n\r\nCan I move my booking to Sunday?\r\n"
    )
    dovecot.append(user, written)
    read_once(engine, feedback_settings, mailbox)
    assert FeedbackLoop(engine, feedback_settings, clock=clock).run_once() == 1
    assert state(engine, tenant, "ada@example.org")["error_count"] == 0
    with engine.connect() as conn:
        audit = conn.execute(select(address_audit)).all()
    assert [(a.action, a.actor, a.error_count) for a in audit] == [("mail_received", "courrier", 3)]


def test_a_reply_to_a_follow_up_stops_the_follow_ups_still_to_come(
    engine: Engine,
    feedback_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    clock: ManualClock,
) -> None:
    user = dovecot.add_user()
    original = sent_message(engine, tenant, clock, "ada@example.org")
    with engine.begin() as conn:
        first, second = factories.insert_messages(
            conn, tenant.id, 2, now=clock(), address="ada@example.org", follow_up_of=original
        )
        conn.execute(
            update(messages).where(messages.c.id == first).values(status="sent", sent_at=clock())
        )
        conn.execute(update(messages).where(messages.c.id == second).values(status="planned"))
    answered = factories.message(engine, first)["message_id_header"]
    reply = (
        f"From: ada@example.org\r\nTo: noreply@club.example\r\nSubject: Re: Reminder\r\n"
        f"Message-ID: <re-1@example.org>\r\nIn-Reply-To: {answered}\r\n\r\nYes, I will come.\r\n"
    ).encode()
    dovecot.append(user, reply)
    assert apply_inbox(engine, feedback_settings, tenant, user, clock) == 1
    stopped = factories.message(engine, second)
    assert (stopped["status"], stopped["status_reason"]) == ("cancelled", "a reply was received")
    assert factories.message(engine, first)["status"] == "sent"


def test_a_bounce_address_of_another_tenant_or_forged_is_not_trusted(
    engine: Engine,
    feedback_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    bounce_box: tuple[Postfix, MailboxUser],
    clock: ManualClock,
) -> None:
    postfix, user = bounce_box
    with engine.begin() as conn:
        other = create_tenant(conn, "Other club", from_email="noreply@other.example", now=clock())
    theirs = sent_message(engine, other, clock, "gone@hard.test")
    mine = sent_message(engine, tenant, clock, "gone@hard.test")
    signer = LinkSigner(feedback_settings.signing_key(), feedback_settings.base_url)
    row = factories.message(engine, mine)
    with smtplib.SMTP("127.0.0.1", postfix.smtp_port, timeout=10) as smtp:
        for token in (signer.verp_token(theirs), f"{theirs}-000000000000"):
            smtp.sendmail(
                f"bounces+{token}@club.example",
                ["gone@hard.test"],
                build_mime(mail_of(row, row["sent_at"])),
            )
    wait_for_mail(dovecot, user, 2, postfix)

    assert apply_inbox(engine, feedback_settings, tenant, user, clock) == 2
    # tied by the original Message-ID instead: the tenant's own message
    assert factories.message(engine, mine)["status"] == "bounced"
    assert factories.message(engine, theirs)["status"] == "sent"
    assert state(engine, tenant, "gone@hard.test")["error_count"] == 2
    with engine.connect() as conn:
        assert health.get_health(conn, other.id, "gone@hard.test") is None


def test_a_success_dsn_marks_the_message_delivered(
    engine: Engine,
    feedback_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    bounce_box: tuple[Postfix, MailboxUser],
    clock: ManualClock,
) -> None:
    postfix, user = bounce_box
    arrived = sent_message(engine, tenant, clock, "member@club.example")
    row = factories.message(engine, arrived)
    token = LinkSigner(feedback_settings.signing_key(), feedback_settings.base_url).verp_token(
        arrived
    )
    with smtplib.SMTP("127.0.0.1", postfix.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.sendmail(
            f"bounces+{token}@club.example",
            ["member@club.example"],
            build_mime(mail_of(row, row["sent_at"])),
            rcpt_options=["NOTIFY=SUCCESS"],
        )
    wait_for_mail(dovecot, user, 2, postfix)  # the mail itself, and Postfix's success report

    assert apply_inbox(engine, feedback_settings, tenant, user, clock) == 2
    assert factories.message(engine, arrived)["status"] == "delivered"
    with engine.connect() as conn:
        assert timeline.timeline_of(conn, arrived)[-1]["entry"] == "delivered"
        assert health.get_health(conn, tenant.id, "member@club.example") is None


@pytest.mark.postgres_only
def test_a_mail_locked_by_another_feedback_worker_is_left_to_it(
    engine: Engine, feedback_settings: Settings, tenant: Tenant, clock: ManualClock
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(inbound_mails).values(
                tenant_id=tenant.id,
                content_hash="0" * 64,
                kind="member",
                from_addr="ada@example.org",
                to_addrs=["noreply@club.example"],
                cc_addrs=[],
                received_at=clock(),
                size=10,
                headers=[],
                defects=[],
            )
        )
    loop = FeedbackLoop(engine, feedback_settings, clock=clock)
    with engine.begin() as other:  # another worker holds the mail in its transaction
        other.execute(select(inbound_mails.c.id).with_for_update()).all()
        assert loop.run_once() == 0
    assert loop.run_once() == 1
    assert loop.run_once() == 0
