"""Filing a received mail: on the member who sent it, in the unassigned list, or as a report.

The sender is matched, after normalisation, against every known address of
every contact of the tenant: one contact, the mail is filed on them and its
attachments become their documents; none or several, it waits in the
unassigned list for a person. Bounces and auto-replies are stored as such,
with the failed recipients and status codes, never as member mail. A reply
to a mail Courrier sent is linked to it through In-Reply-To / References.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from courrier.inbound.documents import DocumentFiles
from courrier.inbound.parsing import ParsedAttachment, ParsedMail, normalise_address
from courrier.inbound.reports import Classification, FailedRecipient, classify
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


@dataclass(frozen=True)
class Received:
    """One parsed mail, where it was read, and why it was read only in part (if it was)."""

    origin: Origin
    mail: ParsedMail
    skipped_reason: str | None = None


def file_mails(
    conn: Connection,
    tenant_id: int,
    received: Sequence[Received],
    files: DocumentFiles,
    *,
    now: datetime,
) -> list[Filed]:
    """Store a batch of mails in the caller's transaction, skipping those already stored.

    A few queries for the whole batch (duplicates, sender matches, linked
    messages, documents) and one insert per mail, so a batch costs about the
    same on PostgreSQL over a network as on a local SQLite file.
    """
    mails = [r.mail for r in received]
    hashes, ids = store.stored_keys(
        conn,
        tenant_id,
        [m.content_hash for m in mails],
        [m.message_id for m in mails if m.message_id],
    )
    matches = store.contacts_by_address(
        conn, tenant_id, [m.from_addr for m in mails if m.from_addr]
    )
    new: list[tuple[Received, Classification]] = []
    for item in received:
        mail = item.mail
        if mail.content_hash in hashes or (mail.message_id and mail.message_id in ids):
            continue
        hashes.add(mail.content_hash)
        if mail.message_id:
            ids.add(mail.message_id)
        new.append((item, _classify(mail)))
    sent = store.sent_messages_by_header(
        conn, tenant_id, [ref for item, found in new for ref in _references(item.mail, found)]
    )
    fresh: list[tuple[Received, Classification, int | None, int | None, list[dict[str, Any]]]] = []
    for item, found in new:
        mail = item.mail
        candidates = matches.get(mail.from_addr or "", []) if found.kind != "bounce" else []
        contact_id = candidates[0] if len(candidates) == 1 else None
        linked = next((sent[ref] for ref in _references(mail, found) if ref in sent), None)
        kept = [_attachment_row(part, files) for part in mail.attachments]
        fresh.append((item, found, contact_id, linked, kept))
    rows = [
        _mail_row(item, found.kind, contact, linked, now)
        for item, found, contact, linked, _ in fresh
    ]
    mail_ids = store.insert_mails(conn, rows)
    parts, reports, documents, filed = [], [], [], {}
    for mail_id, (item, found, contact_id, linked, kept) in zip(mail_ids, fresh, strict=True):
        parts += [{**part, "inbound_mail_id": mail_id} for part in kept]
        reports += [_report_row(tenant_id, mail_id, r, linked) for r in found.recipients]
        if contact_id is not None and found.kind == "member":
            documents += [(contact_id, mail_id, part) for part in kept]
        filed[id(item)] = Filed(mail_id, found.kind, contact_id)
    store.insert_parts(conn, parts, reports)
    store.add_documents_for(conn, tenant_id, documents, now=now)
    files.sync()  # the files are durable before the rows that name them are committed
    return [filed.get(id(item), Filed(None, "duplicate", None)) for item in received]


def file_mail(
    conn: Connection,
    origin: Origin,
    mail: ParsedMail,
    files: DocumentFiles,
    *,
    now: datetime,
    skipped_reason: str | None = None,
) -> Filed:
    """Store one mail in the caller's transaction, unless it is already there."""
    received = [Received(origin, mail, skipped_reason)]
    return file_mails(conn, origin.tenant_id, received, files, now=now)[0]


def _classify(mail: ParsedMail) -> Classification:
    """What kind of mail this is; a mail that trips the detection is member mail, noted."""
    try:
        return classify(mail.message, mail.from_addr)
    except Exception as exc:  # broad on purpose: one odd mail must not stop its batch
        mail.defects.append(f"report detection failed: {type(exc).__name__}: {exc}")
        return Classification("member")


def _references(mail: ParsedMail, found: Classification) -> list[str]:
    """The Message-IDs this mail answers: a report's returned mail first, then its references."""
    returned = [found.original_message_id] if found.original_message_id else []
    return returned + list(mail.references)


def _mail_row(
    item: Received, kind: str, contact_id: int | None, linked: int | None, now: datetime
) -> dict[str, Any]:
    mail, origin = item.mail, item.origin
    return {
        "tenant_id": origin.tenant_id,
        "mailbox_id": origin.mailbox_id,
        "folder": origin.folder,
        "uidvalidity": origin.uidvalidity,
        "uid": origin.uid,
        "message_id_header": mail.message_id,
        "content_hash": mail.content_hash,
        "kind": kind,
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
        "skipped_reason": item.skipped_reason,
    }


def _attachment_row(part: ParsedAttachment, files: DocumentFiles) -> dict[str, Any]:
    """The row of one attachment, its file kept first (by content hash)."""
    return {
        "position": part.position,
        "filename": part.filename,
        "content_type": part.content_type[:255],
        "disposition": part.disposition,
        "content_id": part.content_id,
        "size": len(part.content),
        "sha256": files.store(part.content),
    }


def _report_row(
    tenant_id: int, mail_id: int, failed: FailedRecipient, linked: int | None
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "inbound_mail_id": mail_id,
        "recipient": failed.address[:320],
        "action": failed.action[:32] if failed.action else None,
        "status": failed.status[:32] if failed.status else None,
        "diagnostic": failed.diagnostic,
        "message_id": linked,
    }


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
