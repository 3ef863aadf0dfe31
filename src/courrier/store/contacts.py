"""Contacts: the people a tenant talks to, with every email address they are known by.

Addresses are kept normalised (stripped, lower-cased) in ``contact_addresses``,
one of them primary. An upsert never forgets an address: a contact whose
primary address changes keeps the old one as a known address, so a mail
later received from it is still filed on the right person.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, Table, and_, bindparam, select, true, update
from sqlalchemy.dialects import postgresql, sqlite

from courrier.domain.planning import Recipient
from courrier.errors import ValidationError
from courrier.store.schema import contact_addresses, contacts
from courrier.store.statements import Prepared, array, chunks, keyed_rows


@dataclass
class ContactData:
    """What an integrator says about a contact (``PUT /v1/contacts/{id}``)."""

    name: str | None = None
    email: str | None = None
    other_emails: Sequence[str] = ()
    phone: str | None = None
    locale: str | None = None
    timezone: str | None = None
    roles: Sequence[str] = field(default_factory=tuple)
    staff_profiles: Sequence[str] = field(default_factory=tuple)
    #: staff copy of every booking: "off", "each" or "digest"; None leaves it as it is
    booking_copy: str | None = None


def normalise_address(address: str) -> str:
    """The stored form of an email address: stripped and lower-cased."""
    return address.strip().lower()


def _checked(address: str, field_name: str) -> str:
    normalised = normalise_address(address)
    local, at, domain = normalised.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in normalised):
        raise ValidationError(f"not an email address: {address!r}", field=field_name)
    return normalised


def _columns(data: ContactData) -> dict[str, Any]:
    columns = {
        "name": data.name,
        "phone": data.phone,
        "locale": data.locale,
        "timezone": data.timezone,
        "roles": list(data.roles),
        "staff_profiles": list(data.staff_profiles),
    }
    if data.booking_copy is not None:
        columns["booking_copy"] = data.booking_copy
    return columns


def upsert_contact(
    conn: Connection, tenant_id: int, external_id: str, data: ContactData, *, now: datetime
) -> tuple[dict[str, Any], bool]:
    """Create or update a contact; return it (as :func:`get_contact` does) and whether it is new."""
    primary = _checked(data.email, "email") if data.email else None
    others = [_checked(a, f"other_emails.{i}") for i, a in enumerate(data.other_emails)]
    # Insert unless it exists; a concurrent upsert of the same new contact
    # makes ours a no-op (instead of an error) and we update its row below.
    new_id = conn.execute(
        _insert_or_nothing(conn)
        .values(
            tenant_id=tenant_id,
            external_id=external_id,
            created_at=now,
            updated_at=now,
            **_columns(data),
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "external_id"])
        .returning(contacts.c.id)
    ).scalar()
    created = new_id is not None
    if new_id is not None:
        contact_id = new_id
    else:
        contact_id = conn.execute(
            update(contacts)
            .where(contacts.c.tenant_id == tenant_id, contacts.c.external_id == external_id)
            .values(updated_at=now, **_columns(data))
            .returning(contacts.c.id)
        ).scalar_one()
    _keep_addresses(conn, tenant_id, contact_id, primary, others)
    contact = get_contact(conn, tenant_id, external_id)
    assert contact is not None  # written just above, in this transaction
    return contact, created


def _keep_addresses(
    conn: Connection, tenant_id: int, contact_id: int, primary: str | None, others: Iterable[str]
) -> None:
    """Add the addresses not known yet; make ``primary`` the only primary one when given."""
    known = set(
        conn.execute(
            select(contact_addresses.c.address).where(contact_addresses.c.contact_id == contact_id)
        ).scalars()
    )
    wanted = ([primary] if primary else []) + list(others)
    new = list(dict.fromkeys(a for a in wanted if a not in known))
    if new:
        conn.execute(
            _insert_or_nothing(conn, contact_addresses).on_conflict_do_nothing(
                index_elements=["contact_id", "address"]
            ),
            [
                {
                    "tenant_id": tenant_id,
                    "contact_id": contact_id,
                    "address": a,
                    "is_primary": False,
                }
                for a in new
            ],
        )
    if primary:
        where = contact_addresses.c.contact_id == contact_id
        conn.execute(
            update(contact_addresses)
            .where(where)
            .values(is_primary=contact_addresses.c.address == primary)
        )


def _insert_or_nothing(conn: Connection, table: Table = contacts) -> Any:
    """The dialect's INSERT, which can skip rows that conflict on a unique key."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _as_dict(row: Any, addresses: list[tuple[str, bool]]) -> dict[str, Any]:
    m = row._mapping
    primary = next((a for a, is_primary in addresses if is_primary), None)
    return {
        "id": m["id"],
        "external_id": m["external_id"],
        "name": m["name"],
        "email": primary,
        "other_emails": [a for a, is_primary in addresses if not is_primary],
        "addresses": [{"address": a, "primary": p} for a, p in addresses],
        "phone": m["phone"],
        "locale": m["locale"],
        "timezone": m["timezone"],
        "roles": list(m["roles"] or []),
        "staff_profiles": list(m["staff_profiles"] or []),
        "booking_copy": m["booking_copy"],
        "created_at": m["created_at"],
        "updated_at": m["updated_at"],
    }


def contacts_by_external_id(
    conn: Connection, tenant_id: int, external_ids: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """The tenant's contacts among ``external_ids``, each as :func:`get_contact` gives it.

    Two queries whatever the number of ids (intake resolves recipients for
    thousands of events at once).
    """
    wanted = sorted(set(external_ids))
    found: dict[str, dict[str, Any]] = {}
    for chunk in chunks(wanted):
        rows = conn.execute(
            select(contacts).where(
                contacts.c.tenant_id == tenant_id, contacts.c.external_id.in_(chunk)
            )
        ).all()
        by_id = {row.id: row for row in rows}
        addresses: dict[int, list[tuple[str, bool]]] = {cid: [] for cid in by_id}
        if by_id:
            query = (
                select(
                    contact_addresses.c.contact_id,
                    contact_addresses.c.address,
                    contact_addresses.c.is_primary,
                )
                .where(contact_addresses.c.contact_id.in_(list(by_id)))
                .order_by(contact_addresses.c.contact_id, contact_addresses.c.id)
            )
            for cid, address, is_primary in conn.execute(query):
                addresses[cid].append((address, bool(is_primary)))
        for cid, row in by_id.items():
            found[row.external_id] = _as_dict(row, addresses[cid])
    return found


def recipients_by_external_id(
    conn: Connection, tenant_id: int, external_ids: Iterable[str]
) -> dict[str, tuple[int, Recipient]]:
    """The tenant's contacts among ``external_ids`` as recipients (primary address), with row ids.

    What planning needs of :func:`contacts_by_external_id`, in one query a
    chunk: no known addresses, roles or JSON columns to read for each of
    thousands of recipients.
    """
    wanted = sorted(set(external_ids))
    found: dict[str, tuple[int, Recipient]] = {}
    for part in chunks(wanted):
        params = {"tenant": tenant_id, "ids": array(conn, part)}
        for row_id, external_id, name, email, phone, locale, zone in conn.execute(
            _RECIPIENTS(conn), params
        ):
            found[external_id] = (row_id, Recipient(external_id, name, email, phone, locale, zone))
    return found


def _recipients(dialect: str) -> Select[Any]:
    """A tenant's contacts among some external ids, each with its primary address."""
    source, row = keyed_rows(
        dialect,
        contacts,
        contacts.c.external_id,
        "ids",
        contacts.c.tenant_id == bindparam("tenant"),
        columns=["id", "external_id", "name", "phone", "locale", "timezone"],
    )
    primary = and_(
        contact_addresses.c.contact_id == row.c.id, contact_addresses.c.is_primary == true()
    )
    return (
        select(
            row.c.id,
            row.c.external_id,
            row.c.name,
            contact_addresses.c.address,
            row.c.phone,
            row.c.locale,
            row.c.timezone,
        )
        .select_from(source.outerjoin(contact_addresses, primary))
        .order_by(contact_addresses.c.id.desc())  # the first primary address wins
    )


_RECIPIENTS = Prepared(_recipients)


def get_contact(conn: Connection, tenant_id: int, external_id: str) -> dict[str, Any] | None:
    """One contact with its addresses (primary first in ``email``), or None."""
    return contacts_by_external_id(conn, tenant_id, [external_id]).get(external_id)
