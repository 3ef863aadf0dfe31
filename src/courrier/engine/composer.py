"""Composing planned messages into stored rows: rendered text, attachments, a fixed Message-ID.

Each planned message is rendered once, at intake, and stored whole, so
sending it later needs no template and a resend after a crash is the same
mail (same Message-ID). The calendar invitation of a booking keeps one UID
per subject and a SEQUENCE that rises with each version of the subject, so
calendar clients update the event instead of adding another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from courrier.domain.planning import PlannedMessage
from courrier.domain.status import MessageStatus
from courrier.errors import TemplateError
from courrier.render.ics import booking_invitation
from courrier.render.mime import new_message_id
from courrier.render.templates import RenderedMessage, TemplateRenderer
from courrier.store.tenants import Tenant

#: a booking's status, as the invitation's STATUS (anything else: CONFIRMED)
CALENDAR_STATUS = {"pending": "TENTATIVE", "tentative": "TENTATIVE", "waiting": "TENTATIVE"}


@dataclass(frozen=True)
class Occasion:
    """What a message is about: the event and the subject's state at that event."""

    event_id: int
    event_type: str
    occurred_at: datetime
    subject_id: int
    subject_version: int
    state: Mapping[str, Any]


class MessageComposer:
    """Renders the messages of one tenant; built once per intake batch."""

    def __init__(self, renderer: TemplateRenderer, tenant: Tenant) -> None:
        self.renderer = renderer
        self.tenant = tenant
        self.tenant_context = {
            "name": tenant.name,
            "from_email": tenant.from_email,
            "from_name": tenant.from_name,
            "reply_to": tenant.reply_to,
            "timezone": tenant.timezone,
            "locale": tenant.locale,
        }
        self.attachment_makers: dict[str, Callable[..., dict[str, Any]]] = {
            "ics.request": self._invitation,
        }

    def compose(
        self, planned: PlannedMessage, occasion: Occasion, contact_id: int | None, now: datetime
    ) -> dict[str, Any]:
        """The ``messages`` row for one planned message.

        Columns that start empty (lease, reason, sent time) are left out:
        fewer parameters for the batched insert.
        """
        recipient = planned.recipient
        locale = recipient.locale or self.tenant.locale
        context = {
            "tenant": self.tenant_context,
            "recipient": {
                "contact": recipient.contact,
                "name": recipient.name,
                "email": recipient.email,
                "locale": locale,
                "timezone": recipient.timezone
                or occasion.state.get("timezone")
                or self.tenant.timezone,
            },
            "subject": dict(occasion.state),
            "event": {"type": occasion.event_type, "occurred_at": occasion.occurred_at.isoformat()},
        }
        rendered = self.renderer.render(planned.kind.template_kind, locale, context)
        attachments = [
            self.attachment_makers[name](planned, occasion, rendered, now)
            for name in planned.kind.attachments
            if name in self.attachment_makers
        ]
        status = MessageStatus.DUE if planned.due_at <= now else MessageStatus.PLANNED
        return {
            "tenant_id": self.tenant.id,
            "event_id": occasion.event_id,
            "subject_id": occasion.subject_id,
            "contact_id": contact_id,
            "kind": planned.kind.name,
            "channel": planned.channel,
            "address": planned.address,
            "status": str(status),
            "priority": planned.priority,
            "due_at": planned.due_at,
            "attempts": 0,
            "send_key": planned.send_key,
            "message_id_header": new_message_id(self.tenant.mail_domain),
            "locale": locale,
            "from_addr": self.tenant.from_email,
            "from_name": self.tenant.from_name or self.tenant.name,
            "reply_to": self.tenant.reply_to,
            "to_name": recipient.name,
            "subject_line": rendered.subject,
            "body_text": rendered.text,
            "body_html": rendered.html,
            "attachments": attachments,
            "created_at": now,
            "updated_at": now,
        }

    def _invitation(
        self, planned: PlannedMessage, occasion: Occasion, rendered: RenderedMessage, now: datetime
    ) -> dict[str, Any]:
        """A calendar invitation (``METHOD:REQUEST``) for a subject with a start and an end."""
        state = occasion.state
        try:
            start = datetime.fromisoformat(state["start"])
            end = datetime.fromisoformat(state["end"])
        except (KeyError, TypeError, ValueError) as exc:
            raise TemplateError(
                f"{planned.kind.name}: an invitation needs the subject's start and end"
            ) from exc
        resource = state.get("resource") or {}
        content = booking_invitation(
            uid=f"{state['type']}-{state['id']}@{self.tenant.mail_domain}",
            sequence=occasion.subject_version - 1,
            method="REQUEST",
            start=start,
            end=end,
            timezone=str(state.get("timezone") or self.tenant.timezone),
            summary=rendered.subject,
            location=resource.get("name"),
            description=rendered.text,
            organizer_email=self.tenant.from_email,
            organizer_name=self.tenant.from_name or self.tenant.name,
            attendees=[(planned.address, planned.recipient.name)],
            dtstamp=now,
            status=CALENDAR_STATUS.get(str(state.get("status", "")).lower(), "CONFIRMED"),
        )
        return {
            "filename": "invitation.ics",
            "content_type": "text/calendar",
            "content": content,
            "method": "REQUEST",
        }
