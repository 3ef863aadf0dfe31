"""Whatever arrives in the mailbox is read and kept: odd charsets, broken MIME, huge mails."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from courrier.inbound.reader import LeaseLost
from courrier.settings import Settings
from courrier.store.schema import inbound_attachments, inbound_mails, mailbox_folders, mailboxes
from courrier.store.tenants import Tenant
from tests.inbound import mails
from tests.inbound.conftest import add_contact, add_mailbox, read_once
from tests.support.dovecot import Dovecot, MailboxUser


def stored(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(inbound_mails).order_by(inbound_mails.c.uid))
        return [dict(r._mapping) for r in rows]


def test_non_utf8_charsets_and_encoded_names_are_decoded(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    dovecot.append(
        mailbox_user,
        mails.latin1_mail("renee@club.example"),
        mails.koi8_mail_with_rfc2231_name("ivan@club.example"),
        mails.unknown_charset_mail("cafe@club.example"),
    )
    read_once(engine, inbound_settings, add_mailbox(engine, inbound_settings, tenant, mailbox_user))
    latin1, koi8, unknown = stored(engine)
    assert (latin1["from_name"], latin1["subject_line"]) == ("Renée Léger", "Cotisation réglée")
    assert "réglé ma cotisation à l'aéroclub" in latin1["body_text"]
    assert koi8["subject_line"] == "Диплом"
    assert "Привет, вот мой диплом." in koi8["body_text"]
    with engine.connect() as conn:
        names = conn.execute(select(inbound_attachments.c.filename)).scalars().all()
    assert names == ["diplôme pilote.pdf"]
    assert unknown["body_text"].strip() == "Café crème"
    assert any("x-no-such-charset" in d for d in unknown["defects"])


def test_a_malformed_mail_is_kept_with_its_defects_and_reading_goes_on(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    dovecot.append(
        mailbox_user,
        mails.malformed_mail("jerome@club.example"),
        b"\x00\xff garbage that is not a mail at all \r\n\r\n\r\n",
        mails.member_mail("next@club.example", "After the broken ones"),
    )
    read_once(engine, inbound_settings, add_mailbox(engine, inbound_settings, tenant, mailbox_user))
    broken, garbage, after = stored(engine)
    assert (broken["from_name"], broken["from_addr"]) == ("Jérôme", "jerome@club.example")
    assert broken["subject_line"] == "Logbook été"
    assert "My logbook is attached" in broken["body_text"]
    assert broken["sent_at"] is None
    assert any("Date" in d for d in broken["defects"])
    assert any("Boundary" in d or "boundary" in d for d in broken["defects"])
    assert garbage["from_addr"] is None and "From: no sender address" in garbage["defects"]
    assert after["subject_line"] == "After the broken ones"


def test_a_mail_over_the_size_limit_is_recorded_with_the_reason(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    eve = add_contact(engine, tenant, "m-6", "eve@club.example")
    settings = inbound_settings.model_copy(update={"inbound_max_bytes": 200_000})
    huge = ("scan.tiff", "image/tiff", b"\x49\x49\x2a\x00" * 100_000)
    dovecot.append(
        mailbox_user,
        mails.member_mail("eve@club.example", "Scan of my licence", attachments=[huge]),
        mails.member_mail("eve@club.example", "Small one"),
    )
    read_once(engine, settings, add_mailbox(engine, settings, tenant, mailbox_user))
    big, small = stored(engine)
    assert (big["subject_line"], big["contact_id"], big["body_text"]) == (
        "Scan of my licence",
        eve,
        None,
    )
    assert big["size"] > 500_000
    assert "over the 200,000-byte limit" in big["skipped_reason"]
    assert small["skipped_reason"] is None
    with engine.connect() as conn:
        assert conn.execute(select(inbound_attachments)).all() == []
    assert not settings.documents_dir.exists() or not any(settings.documents_dir.rglob("*.tiff"))


def test_committed_mails_are_flagged_never_marked_read_and_never_imported_twice(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    mailbox = add_mailbox(engine, inbound_settings, tenant, mailbox_user)
    dovecot.append(mailbox_user, *(mails.member_mail(f"m{i}@club.example") for i in range(7)))
    read_once(engine, inbound_settings, mailbox)
    read_once(engine, inbound_settings, mailbox)
    assert len(stored(engine)) == 7
    flags = dovecot.flags(mailbox_user)
    assert all(b"$Courrier" in line and b"\\Seen" not in line for line in flags), flags
    with engine.connect() as conn:
        [(folder, last_uid)] = conn.execute(
            select(mailbox_folders.c.folder, mailbox_folders.c.last_uid)
        ).all()
    assert (folder, last_uid) == ("INBOX", 7)


def test_processed_mail_is_moved_after_it_is_committed(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    dovecot.append(
        mailbox_user, mails.member_mail("x@club.example"), folder="Filed"
    )  # makes the folder
    dovecot.append(mailbox_user, *(mails.member_mail(f"m{i}@club.example") for i in range(3)))
    read_once(
        engine,
        inbound_settings,
        add_mailbox(engine, inbound_settings, tenant, mailbox_user, move_to="Filed"),
    )
    assert len(stored(engine)) == 3
    assert dovecot.count(mailbox_user) == 0
    assert dovecot.count(mailbox_user, "Filed") == 4


def test_a_recreated_folder_is_read_again_without_importing_twice(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    """A new UIDVALIDITY re-reads the folder; mails already stored are recognised."""
    first = [mails.member_mail(f"m{i}@club.example") for i in range(3)]
    dovecot.append(mailbox_user, *first, folder="Members")
    mailbox = add_mailbox(engine, inbound_settings, tenant, mailbox_user, folders=["Members"])
    read_once(engine, inbound_settings, mailbox)
    client = dovecot.connect(mailbox_user)
    client.delete("Members")
    client.logout()
    dovecot.append(mailbox_user, *first, mails.member_mail("new@club.example"), folder="Members")
    read_once(engine, inbound_settings, mailbox)
    rows = stored(engine)
    assert len(rows) == 4
    assert len({r["uidvalidity"] for r in rows}) == 2


def test_every_listed_folder_is_read_and_a_disabled_mailbox_is_not(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    dovecot.append(mailbox_user, mails.member_mail("a@club.example", "In the inbox"))
    dovecot.append(
        mailbox_user, mails.member_mail("b@club.example", "Sorted by a rule"), folder="Members"
    )
    mailbox = add_mailbox(
        engine, inbound_settings, tenant, mailbox_user, folders=["INBOX", "Members"]
    )
    read_once(engine, inbound_settings, mailbox)
    assert sorted((m["folder"], m["subject_line"]) for m in stored(engine)) == [
        ("INBOX", "In the inbox"),
        ("Members", "Sorted by a rule"),
    ]
    with engine.begin() as conn:
        conn.execute(mailboxes.update().values(enabled=False))
    dovecot.append(mailbox_user, mails.member_mail("c@club.example", "While paused"))
    with pytest.raises(LeaseLost):
        read_once(engine, inbound_settings, mailbox)
    assert len(stored(engine)) == 2
