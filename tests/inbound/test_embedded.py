"""``courrier serve`` reads the tenants' mailboxes next to its dispatcher."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from courrier.cli.embedded import Embedded
from courrier.settings import Settings
from courrier.store.schema import inbound_mails
from courrier.store.tenants import Tenant
from tests.inbound import mails
from tests.inbound.conftest import add_mailbox
from tests.inbound.test_readers import wait_until
from tests.support.dovecot import Dovecot, MailboxUser


def test_the_embedded_server_reads_mailboxes(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    add_mailbox(engine, inbound_settings, tenant, mailbox_user)
    dovecot.append(mailbox_user, mails.member_mail("anne@club.example"))

    def stored() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(inbound_mails)).scalar_one())

    with Embedded(inbound_settings, engine) as embedded:
        assert embedded.readers is not None
        wait_until(lambda: stored() == 1)
