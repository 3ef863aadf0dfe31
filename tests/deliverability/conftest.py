"""Deliverability tests drive the API and a real dispatcher on the aiosmtpd recorder.

Shared here: the API fixtures (tenants with keys, a manual clock), the
scenario club and dispatcher, and a few helpers every part uses. A helper's
own fixtures go in its own test file.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from tests.api.conftest import Caller, alice, bob, caller_for, client  # noqa: F401
from tests.scenarios.flow import club, dispatcher, post, send_due  # noqa: F401
from tests.support.smtp import Received, SmtpServer


def a_booking(booking_id: str = "B-1", booker: str = "m-1", **changes: Any) -> dict[str, Any]:
    """A booking subject the club's member m-1 made, with a resource."""
    subject: dict[str, Any] = {
        "type": "booking",
        "id": booking_id,
        "start": "2026-03-05T10:00:00+01:00",
        "end": "2026-03-05T12:00:00+01:00",
        "timezone": "Europe/Paris",
        "booker": booker,
        "resource": {"id": "F-GKQA", "name": "F-GKQA (DR400)"},
        "status": "confirmed",
        "paid": True,
    }
    subject.update(changes)
    return subject


def sent_mail(
    caller: Caller,
    now: ManualClock,
    worker: Dispatcher,
    smtp_server: SmtpServer,
    event_type: str = "booking.created",
    subject: dict[str, Any] | None = None,
    kind: str = "booking.confirmation",
    payload: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Received]:
    """Post an event, send what is due; the message of ``kind`` and the mail the server got."""
    planned = post(caller, now, event_type, subject or a_booking(), payload)
    send_due(worker)
    [message] = [m for m in planned if m["kind"] == kind]
    detail = caller.get(f"/v1/messages/{message['id']}").json()
    [received] = [
        mail
        for mail in smtp_server.received
        if mail.message["Message-ID"] == detail["message_id_header"]
    ]
    return detail, received


def html_part(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]
