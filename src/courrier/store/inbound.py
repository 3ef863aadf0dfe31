"""The shared inbox in the database: mailboxes, folder positions, received mails, documents.

Every query is scoped by tenant. A received mail is written with its
attachments, its bounce reports and the new folder position in the caller's
transaction, so the reader's "committed before anything changes on the
server" holds by construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from courrier.errors import NotFoundError
from courrier.store.schema import (
    bounce_reports,
    contact_addresses,
    contacts,
    documents,
    inbound_attachments,
    inbound_mails,
    mailbox_folders,
    mailboxes,
    messages,
)

#: The columns a mailbox is shown with: never its password.
MAILBOX_COLUMNS = [c for c in mailboxes.c if c.name != "password_encrypted"]


def create_mailbox(
    conn: Connection, tenant_id: int, values: Mapping[str, Any], *, now: datetime
) -> int:
    """Store a mailbox (``password_encrypted`` already encrypted); its id."""
    row = {"enabled": True, "move_to": None, **values, "tenant_id": tenant_id, "created_at": now}
    return int(conn.execute(insert(mailboxes).values(**row).returning(mailboxes.c.id)).scalar_one())


def list_mailboxes(conn: Connection, tenant_id: int) -> list[dict[str, Any]]:
    query = (
        select(*MAILBOX_COLUMNS).where(mailboxes.c.tenant_id == tenant_id).order_by(mailboxes.c.id)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def get_mailbox(
    conn: Connection, tenant_id: int, mailbox_id: int, *, secret: bool = False
) -> dict[str, Any]:
    """One mailbox of the tenant (with its encrypted password if ``secret``), or NotFoundError."""
    columns = list(mailboxes.c) if secret else MAILBOX_COLUMNS
    row = conn.execute(
        select(*columns).where(mailboxes.c.tenant_id == tenant_id, mailboxes.c.id == mailbox_id)
    ).first()
    if row is None:
        raise NotFoundError(f"no mailbox {mailbox_id}")
    return dict(row._mapping)


def delete_mailbox(conn: Connection, tenant_id: int, mailbox_id: int) -> None:
    get_mailbox(conn, tenant_id, mailbox_id)
    conn.execute(delete(mailboxes).where(mailboxes.c.id == mailbox_id))


def enabled_mailbox_ids(conn: Connection) -> list[int]:
    """Every tenant's enabled mailboxes: what the readers run."""
    query = select(mailboxes.c.id).where(mailboxes.c.enabled.is_(True)).order_by(mailboxes.c.id)
    return [int(i) for i in conn.execute(query).scalars()]


def mailbox_for_reader(conn: Connection, mailbox_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(mailboxes).where(mailboxes.c.id == mailbox_id)).first()
    return dict(row._mapping) if row else None


def take_lease(
    conn: Connection, mailbox_id: int, owner: str, *, now: datetime, seconds: float
) -> bool:
    """Hold the mailbox for ``owner`` (taking over an expired lease); True if held."""
    free = or_(
        mailboxes.c.lease_owner.is_(None),
        mailboxes.c.lease_owner == owner,
        mailboxes.c.lease_until < now,
    )
    result = conn.execute(
        update(mailboxes)
        .where(mailboxes.c.id == mailbox_id, mailboxes.c.enabled.is_(True), free)
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
    )
    return result.rowcount == 1


def release_lease(conn: Connection, mailbox_id: int, owner: str) -> None:
    conn.execute(
        update(mailboxes)
        .where(mailboxes.c.id == mailbox_id, mailboxes.c.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


def record_check(conn: Connection, mailbox_id: int, *, error: str | None, now: datetime) -> None:
    """The outcome of the latest reading of a mailbox, shown by the API."""
    conn.execute(
        update(mailboxes)
        .where(mailboxes.c.id == mailbox_id)
        .values(last_error=error, last_checked_at=now)
    )


def folder_position(conn: Connection, mailbox_id: int, folder: str) -> tuple[int, int] | None:
    """``(uidvalidity, last_uid)`` of a folder read before, or None."""
    row = conn.execute(
        select(mailbox_folders.c.uidvalidity, mailbox_folders.c.last_uid).where(
            mailbox_folders.c.mailbox_id == mailbox_id, mailbox_folders.c.folder == folder
        )
    ).first()
    return (int(row[0]), int(row[1])) if row else None


def save_folder_position(
    conn: Connection,
    mailbox_id: int,
    folder: str,
    uidvalidity: int,
    last_uid: int,
    *,
    now: datetime,
) -> None:
    values = {"uidvalidity": uidvalidity, "last_uid": last_uid, "updated_at": now}
    where = (mailbox_folders.c.mailbox_id == mailbox_id) & (mailbox_folders.c.folder == folder)
    if conn.execute(update(mailbox_folders).where(where).values(**values)).rowcount == 0:
        conn.execute(insert(mailbox_folders).values(mailbox_id=mailbox_id, folder=folder, **values))


def insert_mails(conn: Connection, mails: Sequence[Mapping[str, Any]]) -> list[int]:
    """Received mails in one round trip; their ids, in the same order."""
    if not mails:
        return []
    query = insert(inbound_mails).returning(inbound_mails.c.id, sort_by_parameter_order=True)
    return [int(i) for i in conn.execute(query, list(mails)).scalars()]


def insert_parts(
    conn: Connection, attachments: Sequence[Mapping[str, Any]], reports: Sequence[Mapping[str, Any]]
) -> None:
    """The attachments and bounce reports of a batch of mails, in one round trip each."""
    if attachments:
        conn.execute(insert(inbound_attachments), list(attachments))
    if reports:
        conn.execute(insert(bounce_reports), list(reports))


def stored_keys(
    conn: Connection, tenant_id: int, hashes: Sequence[str], message_ids: Sequence[str]
) -> tuple[set[str], set[str]]:
    """Which of these content hashes and Message-IDs the tenant's inbox already holds."""
    found_hashes: set[str] = set()
    found_ids: set[str] = set()
    if hashes:
        query = select(inbound_mails.c.content_hash).where(
            inbound_mails.c.tenant_id == tenant_id,
            inbound_mails.c.content_hash.in_(list(set(hashes))),
        )
        found_hashes.update(conn.execute(query).scalars())
    if message_ids:
        query = select(inbound_mails.c.message_id_header).where(
            inbound_mails.c.tenant_id == tenant_id,
            inbound_mails.c.message_id_header.in_(list(set(message_ids))),
        )
        found_ids.update(i for i in conn.execute(query).scalars() if i)
    return found_hashes, found_ids


def contacts_by_address(
    conn: Connection, tenant_id: int, addresses: Sequence[str]
) -> dict[str, list[int]]:
    """For each normalised address, the ids of the tenant's contacts known by it."""
    found: dict[str, list[int]] = {}
    if not addresses:
        return found
    query = (
        select(contact_addresses.c.address, contact_addresses.c.contact_id)
        .where(
            contact_addresses.c.tenant_id == tenant_id,
            contact_addresses.c.address.in_(list(set(addresses))),
        )
        .distinct()
    )
    for address, contact_id in conn.execute(query):
        found.setdefault(address, []).append(int(contact_id))
    return found


def sent_messages_by_header(
    conn: Connection, tenant_id: int, header_ids: Sequence[str]
) -> dict[str, int]:
    """The tenant's sent messages among these Message-IDs, by Message-ID."""
    if not header_ids:
        return {}
    query = select(messages.c.id, messages.c.message_id_header).where(
        messages.c.tenant_id == tenant_id, messages.c.message_id_header.in_(list(set(header_ids)))
    )
    return {row.message_id_header: int(row.id) for row in conn.execute(query)}


def add_documents_for(
    conn: Connection,
    tenant_id: int,
    items: Sequence[tuple[int, int, Mapping[str, Any]]],
    *,
    now: datetime,
) -> int:
    """Make each ``(contact id, mail id, attachment row)`` a document of its contact; count new."""
    stored = [(c, m, part) for c, m, part in items if part.get("sha256")]
    if not stored:
        return 0
    query = select(documents.c.contact_id, documents.c.sha256).where(
        documents.c.contact_id.in_({c for c, _, _ in stored}),
        documents.c.sha256.in_({part["sha256"] for _, _, part in stored}),
    )
    known = {(int(c), str(h)) for c, h in conn.execute(query)}
    rows = []
    for contact_id, mail_id, part in stored:
        if (contact_id, part["sha256"]) in known:
            continue
        known.add((contact_id, part["sha256"]))
        rows.append(
            {
                "tenant_id": tenant_id,
                "contact_id": contact_id,
                "sha256": part["sha256"],
                "filename": part["filename"],
                "content_type": part["content_type"],
                "size": part["size"],
                "origin": "inbound",
                "inbound_mail_id": mail_id,
                "created_at": now,
            }
        )
    if rows:
        conn.execute(insert(documents), rows)
    return len(rows)


def add_documents(
    conn: Connection, tenant_id: int, contact_id: int, mail_id: int, *, now: datetime
) -> int:
    """Make the stored attachments of a mail documents of the contact; how many are new."""
    parts = conn.execute(
        select(inbound_attachments).where(inbound_attachments.c.inbound_mail_id == mail_id)
    ).all()
    items = [(contact_id, mail_id, dict(p._mapping)) for p in parts]
    return add_documents_for(conn, tenant_id, items, now=now)


def sender_of(conn: Connection, tenant_id: int, mail_id: int) -> str | None:
    """The sender address of one of the tenant's received mails, or NotFoundError."""
    row = conn.execute(
        select(inbound_mails.c.from_addr).where(
            inbound_mails.c.tenant_id == tenant_id, inbound_mails.c.id == mail_id
        )
    ).first()
    if row is None:
        raise NotFoundError(f"no received mail {mail_id}")
    return str(row.from_addr) if row.from_addr else None


def set_contact(conn: Connection, mail_id: int, contact_id: int, assigned_by: str) -> None:
    conn.execute(
        update(inbound_mails)
        .where(inbound_mails.c.id == mail_id)
        .values(contact_id=contact_id, assigned_by=assigned_by)
    )


def remember_address(conn: Connection, tenant_id: int, contact_id: int, address: str) -> bool:
    """Add ``address`` to the contact's known addresses (not primary); False if already known."""
    exists = conn.execute(
        select(contact_addresses.c.id).where(
            contact_addresses.c.contact_id == contact_id, contact_addresses.c.address == address
        )
    ).first()
    if exists:
        return False
    conn.execute(
        insert(contact_addresses).values(
            tenant_id=tenant_id, contact_id=contact_id, address=address, is_primary=False
        )
    )
    return True


def mark_bounces_applied(conn: Connection, report_ids: Sequence[int], *, now: datetime) -> None:
    if report_ids:
        conn.execute(
            update(bounce_reports)
            .where(bounce_reports.c.id.in_(list(report_ids)), bounce_reports.c.applied_at.is_(None))
            .values(applied_at=now)
        )


def count_mails(conn: Connection, tenant_id: int) -> int:
    query = (
        select(func.count())
        .select_from(inbound_mails)
        .where(inbound_mails.c.tenant_id == tenant_id)
    )
    return int(conn.execute(query).scalar_one())


# --- Reading the inbox (API) ------------------------------------------------------------------

#: The lists staff work from: all mail, member mail filed or not, and machine mail.
VIEWS = ("all", "assigned", "unassigned", "bounce", "auto_reply")
SUMMARY_COLUMNS = [
    inbound_mails.c.id,
    inbound_mails.c.kind,
    inbound_mails.c.mailbox_id,
    inbound_mails.c.folder,
    inbound_mails.c.from_addr,
    inbound_mails.c.from_name,
    inbound_mails.c.subject_line,
    inbound_mails.c.sent_at,
    inbound_mails.c.received_at,
    inbound_mails.c.size,
    inbound_mails.c.assigned_by,
    inbound_mails.c.reply_to_message_id,
    inbound_mails.c.skipped_reason,
    contacts.c.external_id.label("contact"),
]


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_mails(
    conn: Connection,
    tenant_id: int,
    *,
    view: str = "all",
    text: str | None = None,
    contact_id: int | None = None,
    offset: int = 0,
    limit: int = 10,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the tenant's received mail, newest first, and how many match in all."""
    where = [inbound_mails.c.tenant_id == tenant_id]
    if view == "assigned":
        where += [inbound_mails.c.kind == "member", inbound_mails.c.contact_id.is_not(None)]
    elif view == "unassigned":
        where += [inbound_mails.c.kind == "member", inbound_mails.c.contact_id.is_(None)]
    elif view in ("bounce", "auto_reply"):
        where.append(inbound_mails.c.kind == view)
    if contact_id is not None:
        where.append(inbound_mails.c.contact_id == contact_id)
    if text:
        pattern = _like(text)
        where.append(
            or_(
                func.lower(inbound_mails.c.subject_line).like(pattern, escape="\\"),
                func.lower(inbound_mails.c.from_addr).like(pattern, escape="\\"),
                func.lower(inbound_mails.c.from_name).like(pattern, escape="\\"),
            )
        )
    source = inbound_mails.outerjoin(contacts, contacts.c.id == inbound_mails.c.contact_id)
    total = conn.execute(select(func.count()).select_from(inbound_mails).where(*where)).scalar_one()
    query = (
        select(*SUMMARY_COLUMNS, _attachment_count())
        .select_from(source)
        .where(*where)
        .order_by(inbound_mails.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(query)], int(total)


def _attachment_count() -> Any:
    return (
        select(func.count())
        .where(inbound_attachments.c.inbound_mail_id == inbound_mails.c.id)
        .scalar_subquery()
        .label("attachments")
    )


def get_mail(conn: Connection, tenant_id: int, mail_id: int) -> dict[str, Any]:
    """One received mail with its attachments and bounce reports, or NotFoundError."""
    source = inbound_mails.outerjoin(contacts, contacts.c.id == inbound_mails.c.contact_id)
    row = conn.execute(
        select(inbound_mails, contacts.c.external_id.label("contact"))
        .select_from(source)
        .where(inbound_mails.c.tenant_id == tenant_id, inbound_mails.c.id == mail_id)
    ).first()
    if row is None:
        raise NotFoundError(f"no received mail {mail_id}")
    mail = dict(row._mapping)
    parts = select(inbound_attachments).where(inbound_attachments.c.inbound_mail_id == mail_id)
    mail["attachment_rows"] = [
        dict(r._mapping) for r in conn.execute(parts.order_by(inbound_attachments.c.position))
    ]
    reports = (
        select(bounce_reports)
        .where(bounce_reports.c.inbound_mail_id == mail_id)
        .order_by(bounce_reports.c.id)
    )
    mail["reports"] = [dict(r._mapping) for r in conn.execute(reports)]
    return mail


def get_attachment(
    conn: Connection, tenant_id: int, mail_id: int, attachment_id: int
) -> dict[str, Any]:
    row = conn.execute(
        select(inbound_attachments)
        .join(inbound_mails, inbound_mails.c.id == inbound_attachments.c.inbound_mail_id)
        .where(
            inbound_mails.c.tenant_id == tenant_id,
            inbound_mails.c.id == mail_id,
            inbound_attachments.c.id == attachment_id,
        )
    ).first()
    if row is None or row.sha256 is None:
        raise NotFoundError(f"no attachment {attachment_id} on received mail {mail_id}")
    return dict(row._mapping)


def contact_id_for(conn: Connection, tenant_id: int, external_id: str) -> int:
    found = conn.execute(
        select(contacts.c.id).where(
            contacts.c.tenant_id == tenant_id, contacts.c.external_id == external_id
        )
    ).scalar()
    if found is None:
        raise NotFoundError(f"no contact {external_id!r}")
    return int(found)


def list_documents(conn: Connection, tenant_id: int, contact_id: int) -> list[dict[str, Any]]:
    query = (
        select(documents)
        .where(documents.c.tenant_id == tenant_id, documents.c.contact_id == contact_id)
        .order_by(documents.c.id.desc())
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def get_document(conn: Connection, tenant_id: int, document_id: int) -> dict[str, Any]:
    row = conn.execute(
        select(documents).where(documents.c.tenant_id == tenant_id, documents.c.id == document_id)
    ).first()
    if row is None:
        raise NotFoundError(f"no document {document_id}")
    return dict(row._mapping)
