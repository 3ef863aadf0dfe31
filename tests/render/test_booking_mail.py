"""The render layer end to end: a confirmation rendered, invited and built reads back whole."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage

import icalendar
import pytest

from courrier.render import (
    MailAttachment,
    OutgoingMail,
    TemplateRenderer,
    booking_invitation,
    build_mime,
    new_message_id,
)

START = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 in Paris, half an hour before DST starts
END = datetime(2026, 3, 29, 2, 30, tzinfo=UTC)  # 04:30 in Paris, after it


@pytest.mark.parametrize("locale", ["en", "fr", "es", "nl", "fr_BE"])
def test_confirmation_with_invitation_reads_back_whole(locale: str) -> None:
    state = {
        "type": "booking",
        "id": "B-1001",
        "start": START.isoformat(),  # as the intake stores it: JSON state
        "end": END.isoformat(),
        "timezone": "Europe/Paris",
        "resource": {"name": "Piste 2 — padel"},
        "status": "confirmed",
    }
    context = {
        "tenant": {
            "name": "Club Pádel Élite",
            "from_email": "club@example.org",
            "reply_to": "office@example.org",
            "timezone": "Europe/Paris",
            "locale": "fr",
        },
        "recipient": {"name": "Zoë <Z> Martin", "email": "zoe@example.com", "locale": locale},
        "subject": state,
        "event": {"type": "booking.created", "occurred_at": "2026-03-01T09:00:00+00:00"},
    }
    rendered = TemplateRenderer().render("booking.confirmation", locale, context)
    invite = booking_invitation(
        uid="booking-B-1001@example.org",
        sequence=0,
        method="REQUEST",
        start=START,
        end=END,
        timezone="Europe/Paris",
        summary=rendered.subject,
        location="Piste 2 — padel",
        description=rendered.text,
        organizer_email="club@example.org",
        organizer_name="Club Pádel Élite",
        attendees=[("zoe@example.com", "Zoë <Z> Martin")],
        dtstamp=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
    )
    mail = OutgoingMail(
        message_id=new_message_id("example.org"),
        date=datetime(2026, 3, 1, 9, 0, 1, tzinfo=UTC),
        from_addr="club@example.org",
        from_name="Club Pádel Élite",
        to_addr="zoe@example.com",
        to_name="Zoë <Z> Martin",
        reply_to="office@example.org",
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        attachments=(
            MailAttachment(
                "invite.ics", "text/calendar", invite.encode(), (("method", "REQUEST"),)
            ),
        ),
    )
    msg = email.message_from_bytes(build_mime(mail), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert all(part.defects == [] for part in msg.walk())
    assert msg["Subject"] == rendered.subject
    assert msg["From"].addresses[0].display_name == "Club Pádel Élite"
    assert msg["To"].addresses[0].display_name == "Zoë <Z> Martin"
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == rendered.text
    assert html.get_content().replace("\r\n", "\n") == rendered.html
    assert "01:30" in rendered.text or "1:30" in rendered.text
    assert "04:30" in rendered.text or "4:30" in rendered.text
    (attached,) = msg.iter_attachments()
    assert attached.get_content_type() == "text/calendar"
    assert attached.get_param("method") == "REQUEST"
    calendar = icalendar.Calendar.from_ical(attached.get_payload(decode=True))
    event = calendar.walk("VEVENT")[0]
    assert event["DTSTART"].dt.timestamp() == START.timestamp()
    assert event["DTEND"].dt.timestamp() == END.timestamp()
    assert event["SUMMARY"] == rendered.subject
    assert event["DESCRIPTION"] == rendered.text
