"""``GET /v1/messages`` (the history, filtered and paged) and ``GET /v1/messages/{id}``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from courrier.api.auth import CurrentTenant, DbEngine
from courrier.api.models import (
    AttachmentOut,
    MessageDetail,
    MessagePage,
    MessageSummary,
    SubjectRef,
    TimelineEntryOut,
)
from courrier.api.paging import MAX_ID, decode_cursor, next_cursor
from courrier.domain.status import MessageStatus
from courrier.errors import NotFoundError, ValidationError
from courrier.store.history import MessageFilter, get_message, list_messages
from courrier.store.timeline import timeline_of

router = APIRouter(prefix="/v1/messages", tags=["messages"])

Short = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")]


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
    tenant: CurrentTenant,
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
) -> MessagePage:
    """Messages of this tenant, filtered; ``next_cursor`` continues with older ones."""
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
    with engine.connect() as conn:
        rows = list_messages(conn, tenant.id, wanted, limit=limit, before_id=before)
    return MessagePage(
        items=[MessageSummary.model_validate(summary(row)) for row in rows],
        next_cursor=next_cursor([row["id"] for row in rows], limit),
    )


@router.get("/{message_id}", response_model=MessageDetail, summary="One message with its timeline")
def read_message(
    message_id: Annotated[int, Path(ge=1, le=MAX_ID)], tenant: CurrentTenant, engine: DbEngine
) -> MessageDetail:
    """The message's rendered content and every step of its life, oldest first."""
    with engine.connect() as conn:
        row = get_message(conn, tenant.id, message_id)
        if row is None:
            raise NotFoundError(f"no message {message_id}")
        timeline = timeline_of(conn, message_id)
    data = summary(row)
    data["attachments"] = [
        AttachmentOut(
            filename=a.get("filename", ""),
            content_type=a.get("content_type", "application/octet-stream"),
            size=len(str(a.get("content", "")).encode()),
        )
        for a in row["attachments"] or []
    ]
    data["timeline"] = [TimelineEntryOut.model_validate(entry) for entry in timeline]
    return MessageDetail.model_validate(data)
