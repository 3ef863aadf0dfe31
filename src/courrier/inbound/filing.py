"""Filing a received mail: on the member who sent it, in the unassigned list, or as a report.

The sender is matched, after normalisation, against every known address of
every contact of the tenant: one contact, the mail is filed on them and its
attachments become their documents; none or several, it waits in the
unassigned list for a person. Bounces and auto-replies are stored as such,
with the failed recipients and status codes, never as member mail. A reply
to a mail Courrier sent is linked to it through In-Reply-To / References.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from courrier.inbound.documents import DocumentFiles
from courrier.inbound.parsing import ParsedMail, normalise_address
from courrier.inbound.reports import classify
from courrier.store import inbound as store


@dataclass(frozen=True)
class Origin:
    """Where a mail was read: the mailbox, folder and its IMAP identity."""

    tenant_id: int
    mailbox_id: int | None = None
    folder: str | None = None
    uidvalidity: int | None = None
    uid: int | None = None


@dataclass(frozen=True)
class Filed:
    """What happened to one mail; ``id`` is None for a duplicate that was skipped."""

    id: int | None
    kind: str
    contact_id: int | None


def file_mail(
    conn: Connection,
    origin: Origin,
    mail: ParsedMail,
    files: DocumentFiles,
    *,
    now: datetime,
    skipped_reason: str | None = None,
) -> Filed:
    """Store ``mail`` in the caller's transaction, unless it is already there."""
    tenant = origin.tenant_id
    if store.already_stored(conn, tenant, mail.message_id, mail.content_hash):
        return Filed(None, "duplicate", None)
    found = classify(mail.message, mail.from_addr)
    contact_id = None
    if found.kind != "bounce" and mail.from_addr:
        matches = store.contacts_with_address(conn, tenant, mail.from_addr)
        contact_id = matches[0] if len(matches) == 1 else None
    references = (
        [found.original_message_id] if found.original_message_id else []
    ) + mail.references
    linked = store.sent_message_for(conn, tenant, references)
    attachments = [
        {
            "position": part.position,
            "filename": part.filename,
            "content_type": part.content_type[:255],
            "disposition": part.disposition,
            "content_id": part.content_id,
            "size": len(part.content),
            "sha256": files.store(part.content),
        }
        for part in mail.attachments
    ]
    reports = [
        {
            "recipient": r.address[:320],
            "action": r.action[:32] if r.action else None,
            "status": r.status[:32] if r.status else None,
            "diagnostic": r.diagnostic,
            "message_id": linked,
        }
        for r in found.recipients
    ]
    row = {
        "tenant_id": tenant,
        "mailbox_id": origin.mailbox_id,
        "folder": origin.folder,
        "uidvalidity": origin.uidvalidity,
        "uid": origin.uid,
        "message_id_header": mail.message_id,
        "content_hash": mail.content_hash,
        "kind": found.kind,
        "contact_id": contact_id,
        "assigned_by": "match" if contact_id else None,
        "reply_to_message_id": linked,
        "from_addr": mail.from_addr[:320] if mail.from_addr else None,
        "from_name": mail.from_name,
        "to_addrs": mail.to,
        "cc_addrs": mail.cc,
        "subject_line": mail.subject,
        "sent_at": mail.date,
        "received_at": now,
        "size": mail.raw_size,
        "headers": [list(pair) for pair in mail.headers],
        "body_text": _no_nul(mail.text),
        "body_html": _no_nul(mail.html),
        "defects": mail.defects,
        "skipped_reason": skipped_reason,
    }
    mail_id = store.insert_mail(conn, row, attachments, reports)
    if contact_id is not None and found.kind == "member":
        store.add_documents(conn, tenant, contact_id, mail_id, now=now)
    return Filed(mail_id, found.kind, contact_id)


def _no_nul(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL characters; a malformed mail may carry some."""
    return text.replace("\x00", "\ufffd") if text else text


def assign_mail(
    conn: Connection,
    tenant_id: int,
    mail_id: int,
    contact_external_id: str,
    *,
    remember: bool,
    now: datetime,
) -> int:
    """File a received mail on a contact by hand; ``remember`` keeps the sender's address for them.

    Returns the contact's id. The mail's attachments become the contact's documents.
    """
    sender = store.sender_of(conn, tenant_id, mail_id)
    contact_id = store.contact_id_for(conn, tenant_id, contact_external_id)
    store.set_contact(conn, mail_id, contact_id, "staff")
    store.add_documents(conn, tenant_id, contact_id, mail_id, now=now)
    if remember and sender:
        store.remember_address(conn, tenant_id, contact_id, normalise_address(sender))
    return contact_id
