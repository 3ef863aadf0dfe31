"""The captured-mail page: ``GET /captured`` and ``GET /captured/{id}`` in a browser.

Shown only when Courrier captures mail locally (no ``COURRIER_SMTP_URL``)
and only to requests from this machine (loopback), because no console login
exists yet: it lists every tenant's captured mail. A mail's HTML is shown in
a sandboxed iframe (no scripts, no remote content) under a strict
Content-Security-Policy.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from courrier.api.auth import get_engine, get_settings
from courrier.api.mail_view import view_of
from courrier.api.paging import MAX_ID
from courrier.store.db import read_only
from courrier.store.history import get_captured, list_captured

router = APIRouter(prefix="/captured", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))

#: Nothing loads from elsewhere; the mail's HTML (in srcdoc) inherits this too.
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-src 'self'"

CapturedId = Annotated[int, PathParam(ge=1, le=MAX_ID)]


def from_loopback(request: Request) -> bool:
    """True for 127.0.0.0/8 and ::1, also written as an IPv4-mapped IPv6 address."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def guard(request: Request) -> None:
    """404 without local capture; 403 for a request from another machine."""
    if get_settings(request).smtp is not None:
        raise HTTPException(404, "the captured-mail page exists only with local capture")
    if not from_loopback(request):
        raise HTTPException(403, "the captured-mail page is only served to this machine (loopback)")


def page(request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context)
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def load(request: Request, captured_id: int) -> dict[str, Any]:
    with read_only(get_engine(request)) as conn:
        row = get_captured(conn, None, captured_id)
    if row is None:
        raise HTTPException(404, f"no captured mail {captured_id}")
    return row


@router.get("", response_class=HTMLResponse)
def captured_list(request: Request) -> HTMLResponse:
    """The newest 200 captured mails: time, recipients, subject."""
    guard(request)
    with read_only(get_engine(request)) as conn:
        mails = list_captured(conn, None, limit=200)
    return page(request, "captured_list.html", {"mails": mails})


@router.get("/{captured_id}", response_class=HTMLResponse)
def captured_mail(request: Request, captured_id: CapturedId) -> HTMLResponse:
    """One mail: headers, text, HTML in a sandboxed frame, attachments to download."""
    guard(request)
    row = load(request, captured_id)
    view = view_of(row["raw"])
    return page(request, "captured_mail.html", {"mail": row, "view": view})


@router.get("/{captured_id}/parts/{index}")
def captured_part(
    request: Request, captured_id: CapturedId, index: Annotated[int, PathParam(ge=0, le=1000)]
) -> Response:
    """An attachment of a captured mail (the .ics invitation, for one), as a download."""
    guard(request)
    parts = view_of(load(request, captured_id)["raw"]).parts
    if index >= len(parts):
        raise HTTPException(404, f"captured mail {captured_id} has no part {index}")
    part = parts[index]
    filename = (part.filename or f"part-{index}.bin").replace('"', "")
    return Response(
        part.content,
        media_type=part.content_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
