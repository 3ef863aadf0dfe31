"""The running readers: new mail arrives at once, the server may go away, a mailbox may fail."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from courrier.inbound.reader import MailboxReaders
from courrier.settings import Settings
from courrier.store.schema import inbound_mails, mailboxes
from courrier.store.tenants import Tenant
from tests.inbound import mails
from tests.inbound.conftest import add_mailbox
from tests.support.dovecot import Dovecot, MailboxUser


def count(engine: Engine, mailbox_id: int | None = None) -> int:
    query = select(func.count()).select_from(inbound_mails)
    if mailbox_id is not None:
        query = query.where(inbound_mails.c.mailbox_id == mailbox_id)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s")
        time.sleep(0.05)


def test_new_mail_is_imported_within_a_second_through_idle(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    settings = inbound_settings.model_copy(
        update={"imap_poll_seconds": 30.0}
    )  # only IDLE can be this quick
    add_mailbox(engine, settings, tenant, mailbox_user)
    readers = MailboxReaders(engine, settings).start()
    try:
        time.sleep(0.3)  # the reader is connected and idling
        started = time.monotonic()
        dovecot.append(mailbox_user, mails.member_mail("quick@club.example"))
        wait_until(lambda: count(engine) == 1, timeout=3.0)
        assert time.monotonic() - started < 1.5
    finally:
        readers.stop()


def test_the_reader_reconnects_after_the_server_restarts(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    mailbox = add_mailbox(engine, inbound_settings, tenant, mailbox_user)
    dovecot.append(mailbox_user, mails.member_mail("before@club.example"))
    readers = MailboxReaders(engine, inbound_settings).start()
    try:
        wait_until(lambda: count(engine) == 1)
        dovecot.restart()
        dovecot.append(mailbox_user, mails.member_mail("after@club.example"))
        wait_until(lambda: count(engine) == 2, timeout=15.0)
    finally:
        readers.stop()
    with engine.connect() as conn:
        last_error = conn.execute(
            select(mailboxes.c.last_error).where(mailboxes.c.id == mailbox)
        ).scalar()
    assert last_error is None  # cleared once reading worked again


def test_a_failing_mailbox_does_not_stop_the_others(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    wrong = dovecot.add_user()
    broken = add_mailbox(
        engine,
        inbound_settings,
        tenant,
        MailboxUser(wrong.host, wrong.port, wrong.username, "not-the-password"),
    )
    good = add_mailbox(engine, inbound_settings, tenant, mailbox_user)
    dovecot.append(
        mailbox_user, mails.member_mail("one@club.example"), mails.member_mail("two@club.example")
    )
    readers = MailboxReaders(engine, inbound_settings).start()
    try:
        wait_until(lambda: count(engine, good) == 2)

        def broken_error() -> str | None:
            with engine.connect() as conn:
                query = select(mailboxes.c.last_error).where(mailboxes.c.id == broken)
                return conn.execute(query).scalar()

        wait_until(lambda: broken_error() is not None)
        assert "login refused" in (broken_error() or "")
        dovecot.append(mailbox_user, mails.member_mail("three@club.example"))
        wait_until(lambda: count(engine, good) == 3)
    finally:
        readers.stop()


def test_a_second_process_does_not_read_a_mailbox_another_holds(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    add_mailbox(engine, inbound_settings, tenant, mailbox_user)
    dovecot.append(mailbox_user, *(mails.member_mail(f"m{i}@club.example") for i in range(20)))
    first = MailboxReaders(engine, inbound_settings).start()
    second = MailboxReaders(engine, inbound_settings).start()
    try:
        wait_until(lambda: count(engine) == 20)
        with engine.connect() as conn:
            owner = conn.execute(select(mailboxes.c.lease_owner)).scalar()
        assert owner in (first.owner, second.owner)
    finally:
        first.stop()
        second.stop()
    with engine.connect() as conn:
        assert conn.execute(select(mailboxes.c.lease_owner)).scalar() is None  # released on stop
