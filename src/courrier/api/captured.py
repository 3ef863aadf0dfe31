"""``GET /v1/captured``: mails kept by the local capture, for this tenant.

Only when Courrier runs without ``COURRIER_SMTP_URL`` (local capture);
otherwise these routes answer 404 saying so.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from courrier.api.auth import AppSettings, CurrentTenant, DbEngine
from courrier.api.mail_view import view_of
from courrier.api.models import (
    CapturedDetail,
    CapturedPage,
    CapturedPart,
    CapturedSummary,
)
from courrier.api.paging import MAX_ID, decode_cursor, next_cursor
from courrier.errors import NotFoundError
from courrier.settings import Settings
from courrier.store.db import read_only
from courrier.store.history import get_captured, list_captured

router = APIRouter(prefix="/v1/captured", tags=["captured mail"])

CapturedId = Annotated[int, Path(ge=1, le=MAX_ID)]


def require_capture(settings: Settings) -> None:
    """404 unless mail is captured locally (no SMTP URL)."""
    if settings.smtp is not None:
        raise NotFoundError("local capture is off: mail goes to COURRIER_SMTP_URL")


def captured_summary(row: dict[str, Any]) -> CapturedSummary:
    return CapturedSummary(
        id=row["id"],
        received_at=row["received_at"],
        envelope_from=row["envelope_from"],
        recipients=list(row["recipients"] or []),
        subject=row["subject_line"],
        message_id_header=row["message_id_header"],
    )


@router.get("", response_model=CapturedPage, summary="Captured mails, newest first")
def list_mails(
    tenant: CurrentTenant,
    engine: DbEngine,
    settings: AppSettings,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> CapturedPage:
    require_capture(settings)
    before = decode_cursor(cursor)
    with read_only(engine) as conn:
        rows = list_captured(conn, tenant.id, limit=limit, before_id=before)
    return CapturedPage(
        items=[captured_summary(row) for row in rows],
        next_cursor=next_cursor([row["id"] for row in rows], limit),
    )


def load(engine: DbEngine, tenant_id: int, captured_id: int) -> dict[str, Any]:
    with read_only(engine) as conn:
        row = get_captured(conn, tenant_id, captured_id)
    if row is None:
        raise NotFoundError(f"no captured mail {captured_id}")
    return row


@router.get(
    "/{captured_id}", response_model=CapturedDetail, summary="One captured mail, taken apart"
)
def read_mail(
    captured_id: CapturedId, tenant: CurrentTenant, engine: DbEngine, settings: AppSettings
) -> CapturedDetail:
    require_capture(settings)
    row = load(engine, tenant.id, captured_id)
    view = view_of(row["raw"])
    base = f"/v1/captured/{captured_id}"
    calendar = view.calendar()
    return CapturedDetail(
        **captured_summary(row).model_dump(),
        headers=view.headers,
        text=view.text,
        html=view.html,
        attachments=[
            CapturedPart(
                index=p.index,
                filename=p.filename,
                content_type=p.content_type,
                size=len(p.content),
                url=f"{base}/parts/{p.index}",
            )
            for p in view.parts
        ],
        raw_url=f"{base}/raw",
        ics_url=f"{base}/invite.ics" if calendar else None,
    )


@router.get("/{captured_id}/raw", response_class=Response, summary="The captured mail as received")
def read_raw(
    captured_id: CapturedId, tenant: CurrentTenant, engine: DbEngine, settings: AppSettings
) -> Response:
    require_capture(settings)
    row = load(engine, tenant.id, captured_id)
    return Response(bytes(row["raw"]), media_type="message/rfc822")


@router.get(
    "/{captured_id}/invite.ics", response_class=Response, summary="The mail's calendar invitation"
)
def read_ics(
    captured_id: CapturedId, tenant: CurrentTenant, engine: DbEngine, settings: AppSettings
) -> Response:
    require_capture(settings)
    calendar = view_of(load(engine, tenant.id, captured_id)["raw"]).calendar()
    if calendar is None:
        raise NotFoundError(f"captured mail {captured_id} has no calendar invitation")
    return Response(
        calendar.content,
        media_type="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="invite-{captured_id}.ics"'},
    )


@router.get(
    "/{captured_id}/parts/{index}", response_class=Response, summary="One attachment of the mail"
)
def read_part(
    captured_id: CapturedId,
    index: Annotated[int, Path(ge=0, le=1000)],
    tenant: CurrentTenant,
    engine: DbEngine,
    settings: AppSettings,
) -> Response:
    require_capture(settings)
    parts = view_of(load(engine, tenant.id, captured_id)["raw"]).parts
    if index >= len(parts):
        raise NotFoundError(f"captured mail {captured_id} has no part {index}")
    part = parts[index]
    filename = (part.filename or f"part-{index}").replace('"', "")
    return Response(
        part.content,
        media_type=part.content_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
