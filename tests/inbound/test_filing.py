"""Mail read from a real Dovecot is filed on the member who sent it, or left for a person."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from courrier.inbound.filing import assign_mail
from courrier.settings import Settings
from courrier.store.schema import (
    bounce_reports,
    documents,
    inbound_attachments,
    inbound_mails,
    messages,
)
from courrier.store.tenants import Tenant
from tests.inbound import mails
from tests.inbound.conftest import add_contact, add_mailbox, read_once
from tests.support.dovecot import Dovecot, MailboxUser
from tests.support.factories import insert_message, message_row


def stored(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(inbound_mails).order_by(inbound_mails.c.id))
        return [dict(r._mapping) for r in rows]


def test_mail_from_a_second_known_address_is_filed_on_that_member(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    """Matching is case-insensitive and uses every address of every contact."""
    anne = add_contact(
        engine, tenant, "m-1", "anne@club.example", others=["anne.home@mail.example"]
    )
    add_contact(engine, tenant, "m-2", "bob@club.example")
    dovecot.append(mailbox_user, mails.member_mail("Anne <Anne.Home@MAIL.example>"))
    read_once(engine, inbound_settings, add_mailbox(engine, inbound_settings, tenant, mailbox_user))
    [mail] = stored(engine)
    assert (mail["contact_id"], mail["kind"], mail["assigned_by"]) == (anne, "member", "match")
    assert mail["from_addr"] == "anne.home@mail.example"


def test_unknown_and_ambiguous_senders_go_to_the_unassigned_list(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    add_contact(engine, tenant, "m-1", "parent1@club.example", others=["family@mail.example"])
    add_contact(engine, tenant, "m-2", "parent2@club.example", others=["family@mail.example"])
    dovecot.append(
        mailbox_user,
        mails.member_mail("stranger@elsewhere.example"),
        mails.member_mail("family@mail.example"),
    )
    read_once(engine, inbound_settings, add_mailbox(engine, inbound_settings, tenant, mailbox_user))
    assert [m["contact_id"] for m in stored(engine)] == [None, None]


def test_an_assignment_remembered_files_the_next_mail_on_its_own(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    carl = add_contact(engine, tenant, "m-3", "carl@club.example")
    mailbox = add_mailbox(engine, inbound_settings, tenant, mailbox_user)
    dovecot.append(mailbox_user, mails.member_mail("Carl <carl.work@corp.example>"))
    read_once(engine, inbound_settings, mailbox)
    [first] = stored(engine)
    assert first["contact_id"] is None
    with engine.begin() as conn:
        assign_mail(conn, tenant.id, first["id"], "m-3", remember=True, now=first["received_at"])
    dovecot.append(mailbox_user, mails.member_mail("carl.work@corp.example", "Second mail"))
    read_once(engine, inbound_settings, mailbox)
    assert [(m["contact_id"], m["assigned_by"]) for m in stored(engine)] == [
        (carl, "staff"),
        (carl, "match"),
    ]


def test_attachments_become_documents_stored_once_by_content_hash(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    dana = add_contact(engine, tenant, "m-4", "dana@club.example")
    certificate = b"%PDF-1.4 medical certificate " * 100
    attachment = ("certificat médical.pdf", "application/pdf", certificate)
    dovecot.append(
        mailbox_user,
        mails.member_mail("dana@club.example", attachments=[attachment]),
        mails.member_mail("dana@club.example", "Again", attachments=[attachment]),
    )
    read_once(engine, inbound_settings, add_mailbox(engine, inbound_settings, tenant, mailbox_user))
    sha = hashlib.sha256(certificate).hexdigest()
    with engine.connect() as conn:
        docs = [dict(r._mapping) for r in conn.execute(select(documents))]
        parts = conn.execute(select(inbound_attachments.c.sha256)).scalars().all()
    assert [(d["contact_id"], d["filename"], d["size"], d["sha256"]) for d in docs] == [
        (dana, "certificat médical.pdf", len(certificate), sha)
    ]
    assert parts == [sha, sha]
    stored_file = inbound_settings.documents_dir / sha[:2] / sha
    assert stored_file.read_bytes() == certificate
    assert len(list(inbound_settings.documents_dir.rglob("*"))) == 2  # one folder, one file


def test_a_bounce_is_stored_with_its_failed_recipient_and_linked_to_the_sent_mail(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
    clock: Any,
) -> None:
    add_contact(engine, tenant, "m-5", "gone@club.example")
    with engine.begin() as conn:
        sent = insert_message(conn, message_row(tenant.id, 1, now=clock()))
        header = conn.execute(select(messages.c.message_id_header)).scalar_one()
    dovecot.append(
        mailbox_user,
        mails.delivery_report(header, "Gone@club.example"),
        mails.vacation_reply("gone@club.example", header),
    )
    one_by_one = inbound_settings.model_copy(update={"inbound_batch_size": 1})  # each alone
    read_once(engine, one_by_one, add_mailbox(engine, one_by_one, tenant, mailbox_user))
    bounce, vacation = stored(engine)
    assert (bounce["kind"], bounce["contact_id"], bounce["reply_to_message_id"]) == (
        "bounce",
        None,
        sent,
    )
    assert vacation["kind"] == "auto_reply"
    assert vacation["reply_to_message_id"] == sent
    with engine.connect() as conn:
        [report] = [dict(r._mapping) for r in conn.execute(select(bounce_reports))]
    assert (report["recipient"], report["action"], report["status"], report["message_id"]) == (
        "gone@club.example",
        "failed",
        "5.1.1",
        sent,
    )
    assert "User unknown" in report["diagnostic"]


def test_each_failed_recipient_of_a_bounce_is_filed_for_the_feedback_loop(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    dovecot.append(
        mailbox_user,
        mails.delivery_report("<a@club.example>", "one@club.example"),
        mails.delivery_report("<b@club.example>", "two@club.example", status="5.2.2"),
    )
    read_once(engine, inbound_settings, add_mailbox(engine, inbound_settings, tenant, mailbox_user))
    with engine.connect() as conn:
        query = select(
            bounce_reports.c.recipient, bounce_reports.c.status, bounce_reports.c.applied_at
        ).order_by(bounce_reports.c.id)
        assert [tuple(r) for r in conn.execute(query)] == [
            ("one@club.example", "5.1.1", None),
            ("two@club.example", "5.2.2", None),
        ]
        waiting = select(inbound_mails.c.id).where(inbound_mails.c.feedback_at.is_(None))
        assert len(conn.execute(waiting).all()) == 2  # the feedback loop applies them
