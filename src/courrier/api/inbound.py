"""The shared inbox over HTTP: mailboxes, received mail, assignment, documents.

``/v1/mailboxes`` connects a tenant's IMAP mailboxes (the password goes in,
encrypted, and never comes out) and tests a connection in plain words.
``/v1/inbound`` lists and shows received mail (HTML made safe), and assigns
an unassigned mail to a contact; ``/v1/contacts/{id}/inbound`` and
``/v1/contacts/{id}/documents`` show what a member sent; documents and
attachments download as files.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from courrier.api.auth import AppClock, AppSettings, CurrentTenant, DbEngine
from courrier.errors import ValidationError
from courrier.inbound.allowed_hosts import AddressNotAllowed, allowed_address
from courrier.inbound.connection import MailboxAccess, MailboxError, check_mailbox, check_security
from courrier.inbound.documents import DocumentFiles
from courrier.inbound.filing import assign_mail
from courrier.inbound.html import safe_html
from courrier.inbound.passwords import PasswordBox
from courrier.settings import Settings
from courrier.store import inbound as store
from courrier.store.db import read_only

router = APIRouter(tags=["inbound"])

Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
ExternalId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]
Folder = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]+$")]
#: Types a browser could run if served as they are; downloaded as plain bytes instead.
ACTIVE_TYPES = {
    "text/html",
    "image/svg+xml",
    "application/xhtml+xml",
    "text/xml",
    "application/xml",
}


class MailboxIn(BaseModel):
    """An IMAP mailbox to read. ``plain`` is accepted only for a loopback host."""

    label: str = Field(min_length=1, max_length=200)
    host: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.:\-\[\]]+$")
    port: int = Field(default=993, ge=1, le=65535)
    security: Literal["tls", "starttls", "plain"] = "tls"
    username: str = Field(min_length=1, max_length=320)
    password: str = Field(
        min_length=1,
        max_length=1000,
        description="An app password; stored encrypted, never returned.",
    )
    folders: list[Folder] = Field(default_factory=lambda: ["INBOX"], min_length=1, max_length=50)
    move_to: Folder | None = Field(
        default=None, description="Folder to move processed mail to, after it is stored."
    )
    enabled: bool = True


class MailboxOut(BaseModel):
    id: int
    label: str
    host: str
    port: int
    security: str
    username: str
    folders: list[str]
    move_to: str | None
    enabled: bool
    last_error: str | None
    last_checked_at: datetime | None
    created_at: datetime


class ConnectionCheck(BaseModel):
    """The answer of a connection test, in plain words."""

    ok: bool
    reason: str | None = Field(
        description=(
            "host_not_found, connection_refused, tls_failure, login_refused, "
            "folder_missing, timeout, network, address_not_allowed"
        )
    )
    message: str
    folders: list[str] = []


class AssignIn(BaseModel):
    contact: str = Field(min_length=1, max_length=200, description="External id of the contact.")
    remember_address: bool = Field(
        default=False, description="File the next mail from this sender on the contact."
    )


class InboundSummary(BaseModel):
    id: int
    kind: str = Field(description="member, bounce or auto_reply")
    from_addr: str | None
    from_name: str | None
    subject: str | None
    sent_at: datetime | None
    received_at: datetime
    size: int
    contact: str | None
    assigned_by: str | None
    reply_to_message_id: int | None
    attachments: int
    skipped_reason: str | None


class InboundAttachmentOut(BaseModel):
    id: int
    filename: str | None
    content_type: str
    disposition: str
    size: int
    download: str | None


class BounceOut(BaseModel):
    recipient: str
    action: str | None
    status: str | None
    diagnostic: str | None
    message_id: int | None


class InboundDetail(InboundSummary):
    message_id_header: str | None
    to: list[str]
    cc: list[str]
    headers: list[tuple[str, str]]
    text: str | None
    html: str | None = Field(
        description="The HTML part made safe: no scripts, no remote images unless asked."
    )
    defects: list[str]
    attachment_list: list[InboundAttachmentOut]
    bounces: list[BounceOut]


class InboundPage(BaseModel):
    items: list[InboundSummary]
    page: int
    limit: int
    total: int
    next: str | None
    previous: str | None


class DocumentOut(BaseModel):
    id: int
    filename: str | None
    content_type: str
    size: int
    sha256: str
    origin: str
    inbound_mail_id: int | None
    created_at: datetime
    download: str


def _access(body: MailboxIn, settings: Settings) -> MailboxAccess:
    check_security(body.host, body.security)
    return MailboxAccess(
        body.host,
        body.port,
        body.security,
        body.username,
        body.password,
        tuple(body.folders),
        settings.imap_timeout,
        settings.imap_networks,
    )


def _check_host(body: MailboxIn, settings: Settings) -> None:
    """Refuse to save a host a tenant may not reach (the reader checks again, as DNS may change).

    A host that does not resolve yet is saved: the reader says so in its error.
    """
    try:
        allowed_address(body.host, body.port, settings.imap_networks)
    except AddressNotAllowed as exc:
        raise ValidationError(str(exc), field="host") from exc
    except OSError:
        return


def _check(access: MailboxAccess) -> ConnectionCheck:
    try:
        folders = check_mailbox(access)
    except MailboxError as exc:
        return ConnectionCheck(ok=False, reason=exc.reason, message=exc.message)
    return ConnectionCheck(
        ok=True, reason=None, message="connected and every folder found", folders=folders
    )


@router.post(
    "/v1/mailboxes", status_code=201, response_model=MailboxOut, summary="Connect a mailbox"
)
def create_mailbox(
    body: MailboxIn, tenant: CurrentTenant, engine: DbEngine, settings: AppSettings, clock: AppClock
) -> MailboxOut:
    check_security(body.host, body.security)
    _check_host(body, settings)
    values = body.model_dump(exclude={"password"})
    values["password_encrypted"] = PasswordBox(settings).encrypt(body.password)
    with engine.begin() as conn:
        mailbox_id = store.create_mailbox(conn, tenant.id, values, now=clock())
        return MailboxOut.model_validate(store.get_mailbox(conn, tenant.id, mailbox_id))


@router.get("/v1/mailboxes", response_model=list[MailboxOut], summary="The tenant's mailboxes")
def list_mailboxes(tenant: CurrentTenant, engine: DbEngine) -> list[MailboxOut]:
    with read_only(engine) as conn:
        return [MailboxOut.model_validate(m) for m in store.list_mailboxes(conn, tenant.id)]


@router.get(
    "/v1/mailboxes/{mailbox_id}",
    response_model=MailboxOut,
    summary="One mailbox and its last error",
)
def read_mailbox(mailbox_id: Id, tenant: CurrentTenant, engine: DbEngine) -> MailboxOut:
    with read_only(engine) as conn:
        return MailboxOut.model_validate(store.get_mailbox(conn, tenant.id, mailbox_id))


@router.delete("/v1/mailboxes/{mailbox_id}", status_code=204, summary="Disconnect a mailbox")
def delete_mailbox(mailbox_id: Id, tenant: CurrentTenant, engine: DbEngine) -> Response:
    with engine.begin() as conn:
        store.delete_mailbox(conn, tenant.id, mailbox_id)
    return Response(status_code=204)


@router.post(
    "/v1/mailboxes/test", response_model=ConnectionCheck, summary="Test a mailbox before saving it"
)
def test_new_mailbox(
    body: MailboxIn, tenant: CurrentTenant, settings: AppSettings
) -> ConnectionCheck:
    return _check(_access(body, settings))


@router.post(
    "/v1/mailboxes/{mailbox_id}/test",
    response_model=ConnectionCheck,
    summary="Test a saved mailbox",
)
def test_mailbox(
    mailbox_id: Id, tenant: CurrentTenant, engine: DbEngine, settings: AppSettings
) -> ConnectionCheck:
    with read_only(engine) as conn:
        mailbox = store.get_mailbox(conn, tenant.id, mailbox_id, secret=True)
    access = MailboxAccess(
        mailbox["host"],
        mailbox["port"],
        mailbox["security"],
        mailbox["username"],
        PasswordBox(settings).decrypt(mailbox["password_encrypted"]),
        tuple(mailbox["folders"]),
        settings.imap_timeout,
        settings.imap_networks,
    )
    return _check(access)


def _page_url(request: Request, page: int) -> str:
    params = dict(request.query_params)
    params["page"] = str(page)
    return f"{request.url.path}?{urlencode(params)}"


def _page(
    request: Request, rows: list[dict[str, Any]], total: int, page: int, limit: int
) -> InboundPage:
    return InboundPage(
        items=[_summary(r) for r in rows],
        page=page,
        limit=limit,
        total=total,
        next=_page_url(request, page + 1) if page * limit < total else None,
        previous=_page_url(request, page - 1) if page > 1 else None,
    )


def _summary(row: dict[str, Any]) -> InboundSummary:
    return InboundSummary.model_validate(
        {**row, "subject": row["subject_line"], "attachments": row.get("attachments", 0)}
    )


Page = Annotated[int, Query(ge=1, le=100_000)]
Limit = Annotated[int, Query(ge=1, le=100)]
Search = Annotated[
    str | None,
    Query(max_length=200, pattern=r"^[^\x00]*$", description="Words of the subject or sender."),
]
View = Annotated[Literal["all", "assigned", "unassigned", "bounce", "auto_reply"], Query()]


@router.get(
    "/v1/inbound", response_model=InboundPage, summary="Received mail, searchable, newest first"
)
def list_inbound(
    request: Request,
    tenant: CurrentTenant,
    engine: DbEngine,
    q: Search = None,
    view: View = "all",
    page: Page = 1,
    limit: Limit = 10,
) -> InboundPage:
    with read_only(engine) as conn:
        rows, total = store.list_mails(
            conn, tenant.id, view=view, text=q, offset=(page - 1) * limit, limit=limit
        )
    return _page(request, rows, total, page, limit)


@router.get(
    "/v1/contacts/{external_id}/inbound",
    response_model=InboundPage,
    summary="Mail received from a contact",
)
def contact_inbound(
    request: Request,
    external_id: ExternalId,
    tenant: CurrentTenant,
    engine: DbEngine,
    q: Search = None,
    page: Page = 1,
    limit: Limit = 10,
) -> InboundPage:
    with read_only(engine) as conn:
        contact_id = store.contact_id_for(conn, tenant.id, external_id)
        rows, total = store.list_mails(
            conn, tenant.id, text=q, contact_id=contact_id, offset=(page - 1) * limit, limit=limit
        )
    return _page(request, rows, total, page, limit)


def _detail(mail: dict[str, Any], remote_images: bool) -> InboundDetail:
    base = f"/v1/inbound/{mail['id']}/attachments"
    parts = [
        InboundAttachmentOut(
            id=a["id"],
            filename=a["filename"],
            content_type=a["content_type"],
            disposition=a["disposition"],
            size=a["size"],
            download=f"{base}/{a['id']}" if a["sha256"] else None,
        )
        for a in mail["attachment_rows"]
    ]
    cids = {
        a["content_id"]: f"{base}/{a['id']}"
        for a in mail["attachment_rows"]
        if a["content_id"] and a["sha256"]
    }
    html = (
        safe_html(mail["body_html"], remote_images=remote_images, cid_urls=cids)
        if mail["body_html"]
        else None
    )
    return InboundDetail.model_validate(
        {
            **mail,
            "subject": mail["subject_line"],
            "attachments": len(parts),
            "to": mail["to_addrs"],
            "cc": mail["cc_addrs"],
            "headers": [tuple(h) for h in mail["headers"]],
            "text": mail["body_text"],
            "html": html,
            "attachment_list": parts,
            "bounces": mail["reports"],
        }
    )


@router.get("/v1/inbound/{mail_id}", response_model=InboundDetail, summary="One received mail")
def read_inbound(
    mail_id: Id,
    tenant: CurrentTenant,
    engine: DbEngine,
    remote_images: Annotated[
        bool, Query(description="Keep remote images in the HTML (they can track the reader).")
    ] = False,
) -> InboundDetail:
    with read_only(engine) as conn:
        return _detail(store.get_mail(conn, tenant.id, mail_id), remote_images)


@router.post(
    "/v1/inbound/{mail_id}/assign",
    response_model=InboundDetail,
    summary="File a received mail on a contact",
)
def assign_inbound(
    mail_id: Id, body: AssignIn, tenant: CurrentTenant, engine: DbEngine, clock: AppClock
) -> InboundDetail:
    with engine.begin() as conn:
        assign_mail(
            conn, tenant.id, mail_id, body.contact, remember=body.remember_address, now=clock()
        )
        return _detail(store.get_mail(conn, tenant.id, mail_id), False)


@router.get(
    "/v1/contacts/{external_id}/documents",
    response_model=list[DocumentOut],
    summary="A contact's documents",
)
def contact_documents(
    external_id: ExternalId, tenant: CurrentTenant, engine: DbEngine
) -> list[DocumentOut]:
    with read_only(engine) as conn:
        contact_id = store.contact_id_for(conn, tenant.id, external_id)
        rows = store.list_documents(conn, tenant.id, contact_id)
    return [DocumentOut.model_validate({**r, "download": f"/v1/documents/{r['id']}"}) for r in rows]


def _file(content: bytes, filename: str | None, content_type: str) -> Response:
    media = "application/octet-stream" if content_type.lower() in ACTIVE_TYPES else content_type
    name = filename or "attachment"
    headers = {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    return Response(content, media_type=media, headers=headers)


@router.get("/v1/documents/{document_id}", summary="Download a document", response_class=Response)
def download_document(
    document_id: Id, tenant: CurrentTenant, engine: DbEngine, settings: AppSettings
) -> Response:
    with read_only(engine) as conn:
        document = store.get_document(conn, tenant.id, document_id)
    content = DocumentFiles(settings.documents_dir).read(document["sha256"])
    return _file(content, document["filename"], document["content_type"])


@router.get(
    "/v1/inbound/{mail_id}/attachments/{attachment_id}",
    summary="Download an attachment",
    response_class=Response,
)
def download_attachment(
    mail_id: Id, attachment_id: Id, tenant: CurrentTenant, engine: DbEngine, settings: AppSettings
) -> Response:
    with read_only(engine) as conn:
        part = store.get_attachment(conn, tenant.id, mail_id, attachment_id)
    content = DocumentFiles(settings.documents_dir).read(part["sha256"])
    return _file(content, part["filename"], part["content_type"])
