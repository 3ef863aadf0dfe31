"""The daily staff digest: one mail per staff member and day listing the day's new bookings.

Staff whose ``booking_copy`` is ``"digest"`` get ``booking.staff_digest``
instead of a copy of each booking. It is due at the kind's time of day
(18:00 by default, a setting of the kind) on the venue's wall clock (the
tenant's zone; the staff member's own with ``zone: recipient``). A booking
belongs to the first digest due at or after Courrier received it, so a
booking that arrives after the day's digest went out is in the next day's,
never lost and never listed twice.

Intake calls :func:`refresh_digests` in its transaction whenever events
about bookings arrive: the pending digest of each such staff member is
rendered again with every booking of its day (their current state, so a
cancelled one shows as cancelled), or planned when it does not exist yet.
Its send key ``digest:<day>:booking.staff_digest:<staff>:email:<day>`` makes
more than one per staff member and day impossible, even when the tenant
changes the hour (a pending digest moves to the new hour); a digest already
sent is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, literal_column, select, update

from courrier.domain.kinds import Catalogue, NotificationKind
from courrier.domain.planning import send_key
from courrier.domain.recipients import Directory
from courrier.domain.status import MessageStatus
from courrier.domain.timing import TimeZoneChoice, next_daily, resolve_local
from courrier.engine.composer import PreferenceLink
from courrier.render.mime import new_message_id
from courrier.render.templates import RenderedMessage, TemplateRenderer
from courrier.store.contacts import contacts_by_external_id
from courrier.store.planning import contents_of, insert_messages, replace_contents
from courrier.store.preferences import suppress_switched_off
from courrier.store.schema import STAFF_ONLY, contacts, events, messages, subjects
from courrier.store.statements import Prepared
from courrier.store.tenants import Tenant

DIGEST_KIND = "booking.staff_digest"
#: the pseudo subject type in a digest's send key (a digest is about a day, not one subject)
DIGEST_SUBJECT = "digest"
#: the ``booking_copy`` of the staff who get a digest
DIGEST_COPY = "digest"
#: statuses in which a digest may still be rendered again
PENDING = (str(MessageStatus.PLANNED), str(MessageStatus.DUE))


@dataclass(frozen=True)
class DigestDay:
    """One digest's day: bookings received in ``(opens, due]`` go out at ``due``."""

    day: str  # YYYY-MM-DD on the zone's wall clock
    zone: str
    opens: datetime
    due: datetime


def digest_day(received: datetime, at: time, zone_name: str) -> DigestDay:
    """The digest a booking received at ``received`` belongs to, in ``zone_name``."""
    zone = ZoneInfo(zone_name)
    due = next_daily(received, at, zone)
    local_day = due.astimezone(zone).date()
    opens = resolve_local(datetime.combine(local_day - timedelta(days=1), at), zone)
    return DigestDay(local_day.isoformat(), zone_name, opens, due)


def refresh_digests(
    conn: Connection,
    tenant: Tenant,
    catalogue: Catalogue,
    renderer: TemplateRenderer,
    now: datetime,
    *,
    link_for: PreferenceLink | None = None,
    directory: Directory | None = None,
) -> int:
    """Plan or re-render today's digest of every staff member who chose one; how many are new.

    ``link_for(tenant_id, contact_row_id)`` gives the preference page link
    for the mail's footer (None: no link), as for every other mail.
    ``directory``: the tenant's staff as read earlier in this transaction,
    if they were (who chose a digest is then known without reading again).
    """
    kind = catalogue.get(DIGEST_KIND)
    if kind is None or kind.timing.at is None:
        return 0
    staff = _digest_staff(conn, tenant.id, directory)
    if not staff:
        return 0
    run = _DigestRun(conn, tenant, kind, renderer, now, link_for)
    rows: list[dict[str, Any]] = []
    for zone, people in _by_zone(kind, tenant, staff).items():
        window = digest_day(now, kind.timing.at, zone)
        bookings = _bookings_received(conn, tenant.id, window)
        rows.extend(row for person in people if (row := run.refresh(window, bookings, person)))
    suppress_switched_off(conn, tenant.id, rows, {kind.name: kind})
    insert_messages(conn, rows)
    return len(rows)


#: the external ids of a tenant's contacts who chose a daily digest of new bookings
_DIGEST_STAFF = Prepared(
    lambda _dialect: select(contacts.c.external_id).where(
        contacts.c.tenant_id == bindparam("tenant"),
        STAFF_ONLY,  # the staff's index: a digest copy is one of its cases
        contacts.c.booking_copy
        == literal_column(f"'{DIGEST_COPY}'"),  # bound, PG's generic plan scanned
    )
)


def _digest_staff(
    conn: Connection, tenant_id: int, directory: Directory | None
) -> list[dict[str, Any]]:
    """The tenant's contacts whose ``booking_copy`` is ``"digest"``, with their addresses."""
    if directory is not None:
        ids = list(directory.booking_copy.get(DIGEST_COPY, ()))
    else:
        ids = list(conn.execute(_DIGEST_STAFF(conn), {"tenant": tenant_id}).scalars())
    if not ids:  # the usual case: asked once per batch of bookings
        return []
    found = contacts_by_external_id(conn, tenant_id, ids)
    return [c for _, c in sorted(found.items()) if c["email"]]


def _by_zone(
    kind: NotificationKind, tenant: Tenant, staff: Sequence[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Staff grouped by the zone their digest day is counted in."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for person in staff:
        zone = tenant.timezone
        if kind.timing.zone is TimeZoneChoice.RECIPIENT and person["timezone"]:
            zone = person["timezone"]
        grouped.setdefault(zone, []).append(person)
    return grouped


def _bookings_received(conn: Connection, tenant_id: int, window: DigestDay) -> list[dict[str, Any]]:
    """The bookings created in the window, as they stand now, oldest first, with booker names."""
    query = (
        select(subjects.c.state)
        .join(events, events.c.subject_id == subjects.c.id)
        .where(
            events.c.tenant_id == tenant_id,
            events.c.type == "booking.created",
            events.c.received_at > window.opens,
            events.c.received_at <= window.due,
        )
        .order_by(events.c.received_at, events.c.id)
    )
    states = [dict(state) for (state,) in conn.execute(query)]
    bookers = {s["booker"] for s in states if isinstance(s.get("booker"), str)}
    names = {k: c["name"] for k, c in contacts_by_external_id(conn, tenant_id, bookers).items()}
    for state in states:
        state.setdefault("booker_name", names.get(state.get("booker", "")))
    return list({s["id"]: s for s in states}.values())


@dataclass(frozen=True)
class _DigestRun:
    """One refresh of a tenant's digests, inside intake's transaction."""

    conn: Connection
    tenant: Tenant
    kind: NotificationKind
    renderer: TemplateRenderer
    now: datetime
    link_for: PreferenceLink | None

    def refresh(
        self, window: DigestDay, bookings: list[dict[str, Any]], person: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Re-render this person's pending digest in place; the row of a new one, else None."""
        key = send_key(
            DIGEST_SUBJECT, window.day, self.kind.name, person["external_id"], "email", window.day
        )
        existing = self.conn.execute(
            select(messages.c.id, messages.c.status).where(
                messages.c.tenant_id == self.tenant.id, messages.c.send_key == key
            )
        ).first()
        if existing is not None and existing.status not in PENDING:
            return None  # sent (or suppressed): a digest goes out once a day at most
        locale = person["locale"] or self.tenant.locale
        rendered = self.render(window, bookings, person, locale)
        if existing is None:
            return self.row(window, person, locale, key, rendered)
        self.conn.execute(
            update(messages)
            .where(messages.c.id == existing.id)
            .values(
                due_at=window.due,  # the tenant may have changed the hour since
                subject_line=rendered.subject,
                updated_at=self.now,
            )
        )
        bodies = {"body_text": rendered.text, "body_html": rendered.html}
        replace_contents(self.conn, [contents_of(existing.id, bodies)])
        return None

    def render(
        self,
        window: DigestDay,
        bookings: list[dict[str, Any]],
        person: Mapping[str, Any],
        locale: str,
    ) -> RenderedMessage:
        tenant = self.tenant
        context = {
            "tenant": {
                "name": tenant.name,
                "from_email": tenant.from_email,
                "reply_to": tenant.reply_to,
                "timezone": tenant.timezone,
                "locale": tenant.locale,
            },
            "recipient": {
                "contact": person["external_id"],
                "name": person["name"],
                "email": person["email"],
                "locale": locale,
                "timezone": person["timezone"] or window.zone,
            },
            "subject": {"type": DIGEST_SUBJECT, "id": window.day, "timezone": window.zone},
            "payload": {"day": window.day, "bookings": bookings},
            "event": {"type": "digest", "occurred_at": window.due.isoformat()},
            "preference_url": self.link_for(tenant.id, person["id"]) if self.link_for else None,
        }
        return self.renderer.render(self.kind.template_kind, locale, context)

    def row(
        self,
        window: DigestDay,
        person: Mapping[str, Any],
        locale: str,
        key: str,
        rendered: RenderedMessage,
    ) -> dict[str, Any]:
        """The ``messages`` row of a new digest."""
        tenant, now = self.tenant, self.now
        status = MessageStatus.DUE if window.due <= now else MessageStatus.PLANNED
        return {
            "tenant_id": tenant.id,
            "event_id": None,
            "subject_id": None,
            "contact_id": person["id"],
            "kind": self.kind.name,
            "channel": "email",
            "address": person["email"],
            "status": str(status),
            "priority": self.kind.priority,
            "due_at": window.due,
            "attempts": 0,
            "send_key": key,
            "message_id_header": new_message_id(tenant.mail_domain),
            "locale": locale,
            "from_addr": tenant.from_email,
            "from_name": tenant.from_name or tenant.name,
            "reply_to": tenant.reply_to,
            "to_name": person["name"],
            "subject_line": rendered.subject,
            "body_text": rendered.text,
            "body_html": rendered.html,
            "attachments": [],
            "created_at": now,
            "updated_at": now,
        }
