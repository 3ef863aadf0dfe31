"""What some recipient roles need from the database: staff by profile, bookings on a resource.

Read once per intake batch, and only when a kind in force names such a
role (``staff:<profile>``, ``booking_copy:<mode>``, ``resource_bookers``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, bindparam, select

from courrier.domain.recipients import Directory
from courrier.domain.timing import parse_aware
from courrier.store.schema import STAFF_ONLY, contacts, subjects
from courrier.store.statements import Prepared

#: a tenant's contacts with a staff profile or a booking copy
_STAFF = Prepared(
    lambda _dialect: (
        select(contacts.c.external_id, contacts.c.staff_profiles, contacts.c.booking_copy)
        .where(contacts.c.tenant_id == bindparam("tenant"), STAFF_ONLY)
        .order_by(contacts.c.id)
    )
)


def staff_directory(conn: Connection, tenant_id: int) -> Directory:
    """The tenant's staff: contact ids by staff profile and by booking copy mode (one query)."""
    by_profile: dict[str, list[str]] = {}
    by_copy: dict[str, list[str]] = {}
    for external_id, profiles, copy in conn.execute(_STAFF(conn), {"tenant": tenant_id}):
        for profile in profiles or ():
            by_profile.setdefault(str(profile), []).append(external_id)
        if copy and copy != "off":
            by_copy.setdefault(copy, []).append(external_id)
    return Directory(staff_by_profile=by_profile, booking_copy=by_copy)


def bookers_on_resource(
    conn: Connection, tenant_id: int, resource_id: str, start: datetime | None, end: datetime | None
) -> list[str]:
    """Bookers and participants of the stored bookings on a resource that overlap a window.

    Cancelled bookings are left out; with no window, every booking to come counts.
    """
    query = (
        select(subjects.c.state)
        .where(
            subjects.c.tenant_id == tenant_id,
            subjects.c.type == "booking",
            subjects.c.state[("resource", "id")].as_string() == resource_id,
        )
        .order_by(subjects.c.id)
    )
    found: list[str] = []
    for (state,) in conn.execute(query):
        if state.get("status") == "cancelled" or not _overlaps(state, start, end):
            continue
        found.extend(_people(state.get("booker"), state.get("participants")))
    return list(dict.fromkeys(found))


def _overlaps(state: dict[str, object], start: datetime | None, end: datetime | None) -> bool:
    b_start, b_end = parse_aware(state.get("start")), parse_aware(state.get("end"))
    if b_start is None or b_end is None:
        return False
    if start is not None and b_end <= start:
        return False
    return end is None or b_start < end


def _people(booker: object, participants: object) -> Iterable[str]:
    if isinstance(booker, str):
        yield booker
    if isinstance(participants, list):
        yield from (p for p in participants if isinstance(p, str))
