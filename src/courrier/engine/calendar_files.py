"""Calendar files attached to mails about subjects with a start and an end (bookings, visits).

A kind lists ``ics.request`` (create or update: created, modified,
validated), ``ics.cancel`` (cancelled) or ``ics`` (CANCEL when the
subject's status is cancelled, else REQUEST) in its attachments. One
subject keeps one UID for life, and the SEQUENCE is the subject's version
less one, so it rises with every change and calendar clients update the
event instead of adding another (RFC 5546).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from courrier.errors import TemplateError
from courrier.render.ics import booking_invitation
from courrier.render.templates import RenderedMessage
from courrier.store.tenants import Tenant

#: a subject's status, as the invitation's STATUS (anything else: CONFIRMED)
CALENDAR_STATUS = {"pending": "TENTATIVE", "tentative": "TENTATIVE", "waiting": "TENTATIVE"}
#: the attachment names a kind may list, and the calendar method each one sends
CALENDAR_ATTACHMENTS = ("ics.request", "ics.cancel", "ics")


def calendar_file(
    method: Literal["REQUEST", "CANCEL"],
    state: Mapping[str, Any],
    tenant: Tenant,
    version: int,
    rendered: RenderedMessage,
    attendee: tuple[str, str | None],
    now: datetime,
) -> dict[str, Any]:
    """A calendar file (stored attachment) for a subject with a start and an end.

    One UID per subject; SEQUENCE is the subject's version less one.
    """
    try:
        start = datetime.fromisoformat(state["start"])
        end = datetime.fromisoformat(state["end"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TemplateError("a calendar file needs the subject's start and end") from exc
    resource = state.get("resource") or {}
    content = booking_invitation(
        uid=calendar_uid(state, tenant),
        sequence=max(version - 1, 0),
        method=method,
        start=start,
        end=end,
        timezone=str(state.get("timezone") or tenant.timezone),
        summary=rendered.subject,
        location=resource.get("name") or state.get("location"),
        description=rendered.text,
        organizer_email=tenant.from_email,
        organizer_name=tenant.from_name or tenant.name,
        attendees=[attendee],
        dtstamp=now,
        status=CALENDAR_STATUS.get(str(state.get("status", "")).lower(), "CONFIRMED"),
    )
    return {
        "filename": "cancel.ics" if method == "CANCEL" else "invitation.ics",
        "content_type": "text/calendar",
        "content": content,
        "method": method,
    }


def calendar_method(name: str, state: Mapping[str, Any]) -> Literal["REQUEST", "CANCEL"]:
    """CANCEL for ``ics.cancel`` (or ``ics`` on a cancelled subject), else REQUEST."""
    if name == "ics.cancel":
        return "CANCEL"
    if name == "ics" and str(state.get("status", "")).lower() == "cancelled":
        return "CANCEL"
    return "REQUEST"


def calendar_uid(state: Mapping[str, Any], tenant: Tenant) -> str:
    """One UID per subject for life: ``booking-B-1@club.example``."""
    return f"{state['type']}-{state['id']}@{tenant.mail_domain}"
