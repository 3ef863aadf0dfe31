"""``GET /v1/messages`` (the history, filtered and paged), ``GET /v1/messages/{id}``, and
``POST /v1/messages``: a one-off message written by the integrator, to one recipient with
Cc and Bcc, optionally followed up until read (a "certified-style" message).

A direct message is stored as kind ``direct``: no kind of the catalogue, so
no preference can switch it off and it carries no List-Unsubscribe; it is
due at once and leaves from the tenant's From and Reply-To like any other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Connection, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from courrier.api.auth import AppClock, DbEngine, RequestKey, tenant_of
from courrier.api.fields import Email, Name, no_nul
from courrier.api.models import (
    AttachmentOut,
    FollowUpOut,
    MessageDetail,
    MessagePage,
    MessageSummary,
    ReadingOut,
    SubjectRef,
    TimelineEntryOut,
)
from courrier.api.paging import MAX_ID, decode_cursor, next_cursor
from courrier.api.responses import model_response
from courrier.domain.followup import policy_from_json
from courrier.domain.planning import DIRECT, direct_send_key
from courrier.domain.status import MessageStatus
from courrier.engine.wakeup import notify_due
from courrier.errors import NotFoundError, ValidationError
from courrier.render.mime import new_message_id
from courrier.store.contacts import get_contact
from courrier.store.db import read_only
from courrier.store.history import MessageFilter, follow_ups_of, get_message, list_messages
from courrier.store.planning import insert_messages
from courrier.store.schema import contact_addresses, messages
from courrier.store.tenants import Tenant
from courrier.store.timeline import timeline_of

router = APIRouter(prefix="/v1/messages", tags=["messages"])

Short = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")]


def one_line(value: str) -> str:
    """A header's text: a line break would start a header of its own (injection)."""
    if "\r" in value or "\n" in value:
        raise ValueError("must be on one line (no CR or LF)")
    return value


HeaderText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=500),
    AfterValidator(no_nul),
    AfterValidator(one_line),
]
Body = Annotated[str, StringConstraints(max_length=200_000), AfterValidator(no_nul)]


class DirectRecipient(BaseModel):
    """Who the message is to: an address (and a name), or a contact by external id."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    name: Annotated[str, StringConstraints(max_length=200), AfterValidator(one_line)] | None = None
    contact: Name | None = Field(default=None, description="a contact's external id")


class DirectMessageIn(BaseModel):
    """A one-off message; the same ``idempotency_key`` again gives the same message."""

    model_config = ConfigDict(extra="forbid")

    to: DirectRecipient = Field(examples=[{"email": "camille@example.org", "name": "Camille"}])
    cc: list[Email] = Field(default_factory=list, max_length=50)
    bcc: list[Email] = Field(default_factory=list, max_length=50)
    subject: HeaderText
    text: Body
    html: Body | None = None
    follow_up: dict[str, Any] | None = Field(
        default=None,
        description="reminders while not read: {delays_minutes, cc_bcc}",
        examples=[{"delays_minutes": [1440, 4320], "cc_bcc": False}],
    )
    idempotency_key: Name


class DirectMessageAccepted(BaseModel):
    id: int
    status: str
    due_at: datetime


def _aware(value: datetime | None, field: str) -> datetime | None:
    """Query times without a zone are taken as UTC; absurd years are refused."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not 1900 <= value.year <= 9000:
        raise ValidationError("must be between the years 1900 and 9000", field=field)
    return value


def summary(row: dict[str, Any]) -> dict[str, Any]:
    """A history row as the API shows it (subject as a {type, id} pair)."""
    data = dict(row)
    subject_type, subject_id = data.pop("subject_type", None), data.pop("subject_id", None)
    data["subject"] = SubjectRef(type=subject_type, id=subject_id) if subject_type else None
    return data


@router.get("", response_model=MessagePage, summary="The message history, newest first")
def list_history(
    key: RequestKey,
    engine: DbEngine,
    subject_type: Short = None,
    subject_id: Short = None,
    contact: Short = None,
    status: MessageStatus | None = None,
    kind: Short = None,
    channel: Short = None,
    since: Annotated[
        datetime | None, Query(description="created at or after (UTC if no zone)")
    ] = None,
    until: Annotated[datetime | None, Query(description="created before (UTC if no zone)")] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200, pattern=r"^[^\x00]*$", description="text in the subject line or address"
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """Messages of this tenant, filtered; ``next_cursor`` continues with older ones."""
    tenant = tenant_of(engine, key)  # in this thread, not one of its own (auth.request_key)
    wanted = MessageFilter(
        subject_type=subject_type,
        subject_id=subject_id,
        contact=contact,
        status=status.value if status else None,
        kind=kind,
        channel=channel,
        since=_aware(since, "since"),
        until=_aware(until, "until"),
        text=q,
    )
    before = decode_cursor(cursor)
    with read_only(engine) as conn:
        rows = list_messages(conn, tenant.id, wanted, limit=limit, before_id=before)
    page = MessagePage(
        items=[MessageSummary.model_validate(summary(row)) for row in rows],
        next_cursor=next_cursor([row["id"] for row in rows], limit),
    )
    return model_response(page)


@router.get("/{message_id}", response_model=MessageDetail, summary="One message with its timeline")
def read_message(
    message_id: Annotated[int, Path(ge=1, le=MAX_ID)], key: RequestKey, engine: DbEngine
) -> Response:
    """The message's rendered content and every step of its life, oldest first."""
    tenant = tenant_of(engine, key)  # in this thread, not one of its own (auth.request_key)
    return model_response(message_detail(message_id, tenant, engine))


def message_detail(message_id: int, tenant: Tenant, engine: Engine) -> MessageDetail:
    """One message of ``tenant`` with its timeline; NotFoundError (404) if the tenant has none."""
    with read_only(engine) as conn:
        row = get_message(conn, tenant.id, message_id)
        if row is None:
            raise NotFoundError(f"no message {message_id}")
        timeline = timeline_of(conn, message_id)
        follow_ups = follow_ups_of(conn, tenant.id, message_id)
    data = summary(row)
    data["attachments"] = [
        AttachmentOut(
            filename=a.get("filename", ""),
            content_type=a.get("content_type", "application/octet-stream"),
            size=len(str(a.get("content", "")).encode()),
        )
        for a in row["attachments"] or []
    ]
    data["cc"] = list(row["cc_addrs"] or [])
    data["bcc"] = list(row["bcc_addrs"] or [])
    for name in ("follow_up", "follow_up_of", "follow_up_index"):
        data[name] = row[name]
    data["follow_ups"] = [FollowUpOut.model_validate(f) for f in follow_ups]
    data["reading"] = reading(timeline)
    data["timeline"] = [TimelineEntryOut.model_validate(entry) for entry in timeline]
    return MessageDetail.model_validate(data)


def reading(timeline: list[dict[str, Any]]) -> ReadingOut:
    """What the timeline tells of delivery and reading: first times and counts."""
    first: dict[str, datetime] = {}
    counts: dict[str, int] = {}
    for entry in timeline:
        name = entry["entry"]
        first.setdefault(name, entry["at"])
        counts[name] = counts.get(name, 0) + 1
    return ReadingOut(
        delivered_at=first.get("delivered"),
        opened_at=first.get("opened"),
        opens=counts.get("opened", 0),
        clicked_at=first.get("clicked"),
        clicks=counts.get("clicked", 0),
        accessed_at=first.get("accessed"),
        read="accessed" in first,
        bounced_at=first.get("bounced"),
    )


def _recipient(conn: Connection, tenant: Tenant, to: DirectRecipient) -> dict[str, Any]:
    """The address, name, contact row id and locale of the message's main recipient."""
    if (to.email is None) == (to.contact is None):
        raise ValidationError("give either an email or a contact (not both)", "to")
    if to.contact is not None:
        found = get_contact(conn, tenant.id, to.contact)
        if found is None:
            raise ValidationError(f"no contact {to.contact!r}", "to.contact")
        if not found["email"]:
            raise ValidationError(f"contact {to.contact!r} has no email address", "to.contact")
        return {
            "address": found["email"],
            "to_name": to.name or found["name"],
            "contact_id": found["id"],
            "locale": found["locale"] or tenant.locale,
        }
    assert to.email is not None
    address = to.email.lower()
    contact_id = conn.execute(
        select(contact_addresses.c.contact_id)
        .where(contact_addresses.c.tenant_id == tenant.id, contact_addresses.c.address == address)
        .limit(1)
    ).scalar()
    return {
        "address": address,
        "to_name": to.name,
        "contact_id": contact_id,
        "locale": tenant.locale,
    }


def _existing(conn: Connection, tenant_id: int, send_key: str) -> dict[str, Any] | None:
    query = select(messages.c.id, messages.c.status, messages.c.due_at).where(
        messages.c.tenant_id == tenant_id, messages.c.send_key == send_key
    )
    row = conn.execute(query).first()
    return dict(row._mapping) if row is not None else None


@router.post(
    "", status_code=202, response_model=DirectMessageAccepted, summary="Send a one-off message"
)
def post_message(
    body: DirectMessageIn, request: Request, key: RequestKey, engine: DbEngine, clock: AppClock
) -> Response:
    """Store a message due now (To, Cc, Bcc; optional follow-ups) and wake the dispatcher.

    Posting the same ``idempotency_key`` again stores nothing and answers the
    same message, with the header ``Idempotent-Replayed: true``.
    """
    tenant = tenant_of(engine, key)  # in this thread: see auth.request_key
    replayed = {"Idempotent-Replayed": "true"}
    headers: dict[str, str] = {}
    policy = policy_from_json(body.follow_up)
    send_key = direct_send_key(body.idempotency_key)
    now = clock()
    try:
        with engine.begin() as conn:
            found = _existing(conn, tenant.id, send_key)
            if found is None:
                row = {
                    "tenant_id": tenant.id,
                    "event_id": None,
                    "subject_id": None,
                    **_recipient(conn, tenant, body.to),
                    "kind": DIRECT,
                    "channel": "email",
                    "status": MessageStatus.DUE.value,
                    "priority": 50,
                    "due_at": now,
                    "attempts": 0,
                    "send_key": send_key,
                    "message_id_header": new_message_id(tenant.mail_domain),
                    "from_addr": tenant.from_email,
                    "from_name": tenant.from_name or tenant.name,
                    "reply_to": tenant.reply_to,
                    "subject_line": body.subject,
                    "body_text": body.text,
                    "body_html": body.html,
                    "attachments": [],
                    "cc_addrs": [a.lower() for a in body.cc] or None,
                    "bcc_addrs": [a.lower() for a in body.bcc] or None,
                    "follow_up": policy.as_json() if policy is not None else None,
                    "created_at": now,
                    "updated_at": now,
                }
                (message_id,) = insert_messages(conn, [row])
                notify_due(conn)
                found = {"id": message_id, "status": row["status"], "due_at": now}
            else:
                headers = replayed
    except IntegrityError:  # the same key posted at the same moment: the other one won
        with read_only(engine) as conn:
            found = _existing(conn, tenant.id, send_key)
        if found is None:
            raise
        headers = replayed
    else:
        wakeup = getattr(request.app.state, "wakeup", None)
        if wakeup is not None and not headers:
            wakeup.poke()
    return model_response(DirectMessageAccepted(**found), 202, headers)
