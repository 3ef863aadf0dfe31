"""Composing planned messages into stored rows: rendered text, attachments, a fixed Message-ID.

Each planned message is rendered once, when planned (and again when a
change moves it), and stored whole, so sending it later needs no template
and a resend after a crash is the same mail (same Message-ID).

The context a template sees (see :mod:`courrier.render.templates`): the
tenant (name, addresses, zone, locale, address and logo when set), the
recipient, the subject as it now stands, the previous version of the
subject for a change (read from ``subject_versions``) with the fields that
changed, the event's own payload, the names of the contacts they mention
(``people``: external id -> name), and the link to the recipient's
preference page.

Calendar files are made by :mod:`courrier.engine.calendar_files`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, select

from courrier.domain.planning import PlannedMessage
from courrier.domain.status import MessageStatus
from courrier.engine.calendar_files import CALENDAR_ATTACHMENTS, calendar_file, calendar_method
from courrier.engine.rehearsal import Rehearsal
from courrier.errors import TemplateError
from courrier.render.mime import new_message_id
from courrier.render.samples import changes
from courrier.render.templates import RenderedMessage, TemplateRenderer
from courrier.store.schema import contacts, subject_versions
from courrier.store.tenants import Tenant

#: fields of a subject (and of an event's payload) that name contacts, shown by name in mails
PEOPLE_FIELDS = (
    "booker",
    "participants",
    "manager",
    "visitor",
    "host",
    "cohosts",
    "requester",
    "assigned_manager",
    "followers",
    "member",
)
PAYLOAD_PEOPLE = ("author", "participant", "follower")
#: (tenant row id, contact row id) -> the contact's preference page
PreferenceLink = Callable[[int, int], str]


@dataclass(frozen=True)
class Occasion:
    """What a message is about: the event, the subject's state at that event, and before it.

    ``previous`` is the state of the version before (None: the composer
    reads it from ``subject_versions`` when it has a connection).
    """

    event_id: int | None
    event_type: str
    occurred_at: datetime
    subject_id: int | None
    subject_version: int
    state: Mapping[str, Any]
    payload: Mapping[str, Any] = field(default_factory=dict)
    previous: Mapping[str, Any] | None = None


class MessageComposer:
    """Renders the messages of one tenant; built once per intake batch.

    ``conn`` (optional) lets it read a subject's previous version for the
    old values a modification shows; ``preference_link(tenant_id,
    contact_id)`` makes the link to a recipient's preference page put in
    every email. ``rehearsal`` (optional) keeps what it renders, and gives
    back what was rendered before from equal inputs with the same renderer
    (:class:`courrier.engine.rehearsal.Rehearsal`).
    """

    def __init__(
        self,
        renderer: TemplateRenderer,
        tenant: Tenant,
        *,
        conn: Connection | None = None,
        preference_link: PreferenceLink | None = None,
        rehearsal: Rehearsal | None = None,
    ) -> None:
        self.renderer = renderer
        self.tenant = tenant
        self.conn = conn
        self.preference_link = preference_link
        self.rehearsal = (
            rehearsal if rehearsal is not None and rehearsal.renderer is renderer else None
        )
        self.tenant_context = tenant_context(tenant)
        self._previous: dict[tuple[int, int], Mapping[str, Any] | None] = {}
        self._names: dict[str, str | None] = {}

    def context(
        self, planned: PlannedMessage, occasion: Occasion, contact_id: int | None
    ) -> dict[str, Any]:
        """What the templates of ``planned`` see (documented in the module's docstring)."""
        recipient = planned.recipient
        previous = self.previous_state(occasion)
        link = None
        if self.preference_link is not None and contact_id is not None:
            link = self.preference_link(self.tenant.id, contact_id)
        return {
            "tenant": self.tenant_context,
            "recipient": {
                "contact": recipient.contact,
                "name": recipient.name,
                "email": recipient.email,
                "locale": recipient.locale or self.tenant.locale,
                "timezone": recipient.timezone
                or occasion.state.get("timezone")
                or self.tenant.timezone,
            },
            "subject": dict(occasion.state),
            "previous": dict(previous) if previous is not None else None,
            "changes": changes(previous, occasion.state) if previous is not None else [],
            "payload": dict(occasion.payload),
            "people": self.people(occasion, planned),
            "event": {"type": occasion.event_type, "occurred_at": occasion.occurred_at.isoformat()},
            "preference_url": link,
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
        context = self.context(planned, occasion, contact_id)
        rendered = self._render(planned.kind.template_kind, locale, context, occasion)
        status = MessageStatus.DUE if planned.due_at <= now else MessageStatus.PLANNED
        follow_up = planned.kind.follow_up  # the reminders, planned once it is sent
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
            "attachments": self.attachments(planned, occasion, rendered, now),
            "follow_up": follow_up.as_json() if follow_up is not None else None,
            "created_at": now,
            "updated_at": now,
        }

    def _render(
        self, kind: str, locale: str, context: dict[str, Any], occasion: Occasion
    ) -> RenderedMessage:
        """The renderer's result, or the equal one the rehearsal holds.

        The subject's version is part of the key: a version committed
        between the rehearsal and the transaction changes ``previous``,
        whose values may be equal (``1 == True``) and still print otherwise.
        """
        rehearsal = self.rehearsal
        if rehearsal is None:
            return self.renderer.render(kind, locale, context)
        subject = occasion.state.get("id")
        key = (kind, locale, context["recipient"]["email"], subject, occasion.subject_version)
        found = rehearsal.find(key, context)
        if found is None:
            found = rehearsal.keep(key, context, self.renderer.render(kind, locale, context))
        return found  # type: ignore[no-any-return]

    def attachments(
        self, planned: PlannedMessage, occasion: Occasion, rendered: RenderedMessage, now: datetime
    ) -> list[dict[str, Any]]:
        """The files the kind asks for: at most one calendar file (others are not known here)."""
        for name in planned.kind.attachments:
            if name in CALENDAR_ATTACHMENTS:
                method = calendar_method(name, occasion.state)
                return [self.invitation(method, planned, occasion, rendered, now)]
        return []

    def people(self, occasion: Occasion, planned: PlannedMessage) -> dict[str, str | None]:
        """The names of the contacts the subject and the payload mention, by external id.

        The recipient's name is known already; others are read once per
        composer (one query for the ones not seen yet).
        """
        recipient = planned.recipient
        if recipient.contact is not None:
            self._names.setdefault(recipient.contact, recipient.name)
        wanted = mentioned(occasion.state, PEOPLE_FIELDS) | mentioned(
            occasion.payload, PAYLOAD_PEOPLE
        )
        missing = [c for c in wanted if c not in self._names]
        if missing and self.conn is not None:
            query = select(contacts.c.external_id, contacts.c.name).where(
                contacts.c.tenant_id == self.tenant.id, contacts.c.external_id.in_(missing)
            )
            self._names.update({row.external_id: row.name for row in self.conn.execute(query)})
        return {c: self._names.get(c) for c in wanted}

    def previous_state(self, occasion: Occasion) -> Mapping[str, Any] | None:
        """The subject's state before this event: given, or read once from ``subject_versions``."""
        if occasion.previous is not None:
            return occasion.previous
        if self.conn is None or occasion.subject_id is None or occasion.subject_version <= 1:
            return None
        key = (occasion.subject_id, occasion.subject_version - 1)
        if key not in self._previous:
            query = select(subject_versions.c.state).where(
                subject_versions.c.subject_id == key[0], subject_versions.c.version == key[1]
            )
            self._previous[key] = self.conn.execute(query).scalar()
        return self._previous[key]

    def invitation(
        self,
        method: Literal["REQUEST", "CANCEL"],
        planned: PlannedMessage,
        occasion: Occasion,
        rendered: RenderedMessage,
        now: datetime,
    ) -> dict[str, Any]:
        """The calendar file of ``planned``, for the recipient as attendee.

        Stamped with ``now``; one kept by a rehearsal keeps the stamp of the
        moment it was made, a moment before the transaction (the other
        inputs must be equal).
        """
        inputs = (
            method,
            occasion.state,
            self.tenant,
            occasion.subject_version,
            rendered,
            (planned.address, planned.recipient.name),
        )
        rehearsal = self.rehearsal
        key = ("ics", method, planned.address, occasion.state.get("id"))
        if rehearsal is not None and (found := rehearsal.find(key, inputs)) is not None:
            return dict(found)
        try:
            made = calendar_file(*inputs, now)
        except TemplateError as exc:
            raise TemplateError(f"{planned.kind.name}: {exc}") from exc
        if rehearsal is not None:
            rehearsal.keep(key, inputs, dict(made))
        return made


def mentioned(data: Mapping[str, Any], fields: tuple[str, ...]) -> set[str]:
    """The contact ids ``data`` holds under ``fields`` (one id or a list of ids each)."""
    found: set[str] = set()
    for name in fields:
        value = data.get(name)
        if value is None:  # most fields: a subject names one or two kinds of people
            continue
        if isinstance(value, str):
            if value:
                found.add(value)
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, str) and v)
    return found


def tenant_context(tenant: Tenant) -> dict[str, Any]:
    """The tenant as templates see it (address and logo when the tenant has them)."""
    return {
        "name": tenant.name,
        "from_email": tenant.from_email,
        "from_name": tenant.from_name,
        "reply_to": tenant.reply_to,
        "timezone": tenant.timezone,
        "locale": tenant.locale,
        "address": getattr(tenant, "address", None),
        "logo_url": getattr(tenant, "logo_url", None),
    }
