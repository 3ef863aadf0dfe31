"""Contact preferences in the database, and the suppression of messages they stop.

Rules live in ``contact_preferences`` (see :mod:`courrier.domain.preferences`
for how they decide). A contact's rules are replaced as a whole, by the
preference page or by staff; a rule left unchanged keeps who set it and when.

The planner calls :func:`suppress_switched_off` on a batch of composed rows
(:func:`suppressed_reason` answers for one message), so a message that
preferences stop is stored as ``suppressed`` with the reason; the send-time
check (:mod:`courrier.engine.sendcheck`) asks :func:`switched_off_rows`
again for each claimed batch, since a contact may switch a kind off after
its reminder was planned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from courrier.domain.kinds import DEFAULT_CATALOGUE, Catalogue, NotificationKind
from courrier.domain.preferences import Preference, SetBy, suppression_reason
from courrier.domain.status import MessageStatus
from courrier.store.kinds import Catalogues
from courrier.store.kinds import tenant_catalogue as tenant_kinds
from courrier.store.schema import contact_preferences, contacts
from courrier.store.statements import Prepared, array, chunks, in_array

#: a staff member's copies of new bookings: none, one mail each, or a daily digest
BOOKING_COPY_MODES = ("off", "each", "digest")


def tenant_catalogue(conn: Connection, tenant_id: int, *, enabled_only: bool = True) -> Catalogue:
    """The tenant's kinds (defaults with its changes, and its own), those switched on by default."""
    kinds = tenant_kinds(conn, tenant_id, DEFAULT_CATALOGUE)
    if enabled_only:
        return kinds.catalogue
    return Catalogue(k.kind for k in kinds.kinds)


#: the rules of a tenant's contacts among some row ids
_RULES = Prepared(
    lambda dialect: (
        select(
            contact_preferences.c.contact_id,
            contact_preferences.c.kind,
            contact_preferences.c.channel,
            contact_preferences.c.enabled,
            contact_preferences.c.set_by,
        )
        .where(
            contact_preferences.c.tenant_id == bindparam("tenant"),
            in_array(dialect, contact_preferences.c.contact_id, "ids"),
        )
        .order_by(contact_preferences.c.id)
    )
)


def rules_of(
    conn: Connection, tenant_id: int, contact_ids: Iterable[int]
) -> dict[int, list[Preference]]:
    """The rules of each of ``contact_ids`` (row ids); a contact without rules maps to []."""
    wanted = sorted(set(contact_ids))
    found: dict[int, list[Preference]] = {cid: [] for cid in wanted}
    for part in chunks(wanted):
        params = {"tenant": tenant_id, "ids": array(conn, part)}
        for contact_id, kind, channel, enabled, set_by in conn.execute(_RULES(conn), params):
            found[contact_id].append(Preference(kind, channel, bool(enabled), SetBy(set_by)))
    return found


def page_contact(conn: Connection, tenant_id: int, contact_id: int) -> dict[str, Any] | None:
    """What the preference page shows of a contact (name, locale), or None when it is gone."""
    columns = (
        contacts.c.id,
        contacts.c.external_id,
        contacts.c.name,
        contacts.c.locale,
        contacts.c.staff_profiles,
        contacts.c.booking_copy,
    )
    row = conn.execute(
        select(*columns).where(contacts.c.tenant_id == tenant_id, contacts.c.id == contact_id)
    ).first()
    return dict(row._mapping) if row is not None else None


def set_booking_copy(conn: Connection, tenant_id: int, contact_id: int, mode: str) -> None:
    """A staff member's own choice of booking copies: ``off``, ``each`` or ``digest``."""
    if mode not in BOOKING_COPY_MODES:
        raise ValueError(f"booking copy is one of {', '.join(BOOKING_COPY_MODES)}, not {mode!r}")
    conn.execute(
        update(contacts)
        .where(contacts.c.tenant_id == tenant_id, contacts.c.id == contact_id)
        .values(booking_copy=mode)
    )


def preference_rows(conn: Connection, tenant_id: int, contact_id: int) -> list[dict[str, Any]]:
    """One contact's rules as stored (kind, channel, enabled, set_by, updated_at), sorted."""
    query = (
        select(
            contact_preferences.c.kind,
            contact_preferences.c.channel,
            contact_preferences.c.enabled,
            contact_preferences.c.set_by,
            contact_preferences.c.updated_at,
        )
        .where(
            contact_preferences.c.tenant_id == tenant_id,
            contact_preferences.c.contact_id == contact_id,
        )
        .order_by(contact_preferences.c.kind, contact_preferences.c.channel)
    )
    return [{**row._mapping, "enabled": bool(row.enabled)} for row in conn.execute(query)]


def replace_rules(
    conn: Connection,
    tenant_id: int,
    contact_id: int,
    rules: Sequence[Preference],
    *,
    set_by: SetBy,
    now: datetime,
) -> None:
    """Make ``rules`` the contact's whole set (one per kind and channel; the last one wins).

    A rule that says what the stored one already said keeps its author and
    date; the others are recorded as set by ``set_by`` now.
    """
    before = {
        (row["kind"], row["channel"]): row for row in preference_rows(conn, tenant_id, contact_id)
    }
    wanted = {rule.key: rule for rule in rules}
    rows = []
    for (kind, channel), rule in wanted.items():
        old = before.get((kind, channel))
        kept = old is not None and old["enabled"] == rule.enabled
        rows.append(
            {
                "tenant_id": tenant_id,
                "contact_id": contact_id,
                "kind": kind,
                "channel": channel,
                "enabled": rule.enabled,
                "set_by": old["set_by"] if kept and old else str(set_by),
                "updated_at": old["updated_at"] if kept and old else now,
            }
        )
    conn.execute(
        delete(contact_preferences).where(
            contact_preferences.c.tenant_id == tenant_id,
            contact_preferences.c.contact_id == contact_id,
        )
    )
    if rows:
        conn.execute(insert(contact_preferences), rows)


def suppressed_reason(
    conn: Connection, tenant_id: int, contact_id: int | None, kind: NotificationKind, channel: str
) -> str | None:
    """Why the contact's preferences stop ``kind`` on ``channel``, or None when they don't.

    A message to a bare address (no contact) and a kind that preferences
    cannot switch off (``preference_optional`` False) are never stopped.
    """
    if contact_id is None or not kind.preference_optional:
        return None
    rules = rules_of(conn, tenant_id, [contact_id])[contact_id]
    return suppression_reason(rules, kind, channel)


def suppressed_reasons(
    conn: Connection,
    tenant_id: int,
    wanted: Sequence[tuple[int | None, NotificationKind, str]],
) -> list[str | None]:
    """:func:`suppressed_reason` for many (contact, kind, channel) at once (one query), in order.

    For the check at send time of a claimed batch: a contact may have
    switched a kind off after its message was planned.
    """
    rules = rules_of(conn, tenant_id, (c for c, _, _ in wanted if c is not None))
    return [
        suppression_reason(rules[contact_id], kind, channel) if contact_id is not None else None
        for contact_id, kind, channel in wanted
    ]


def switched_off_rows(
    conn: Connection,
    rows: Sequence[Mapping[str, Any]],
    base: Catalogue = DEFAULT_CATALOGUE,
    catalogues: Catalogues | None = None,
) -> list[tuple[int, str]]:
    """The stored messages (``id``, ``tenant_id``, ``contact_id``, ``kind``, ``channel``) that
    preferences now stop, each with the reason: the check at send time, a few queries a batch.

    A message of a kind its tenant no longer has is left alone (nothing to check against).
    ``catalogues`` shares the tenants' catalogues already read in this transaction.
    """
    catalogues = catalogues or Catalogues(conn, base)
    by_tenant: dict[int, list[Mapping[str, Any]]] = {}
    for row in rows:
        if row.get("contact_id") is not None:
            by_tenant.setdefault(int(row["tenant_id"]), []).append(row)
    stopped: list[tuple[int, str]] = []
    for tenant_id, mine in by_tenant.items():
        kinds = catalogues.of(tenant_id)
        known = [(r, tk.kind) for r in mine if (tk := kinds.get(r["kind"])) is not None]
        reasons = suppressed_reasons(
            conn, tenant_id, [(r["contact_id"], kind, r["channel"]) for r, kind in known]
        )
        stopped += [(int(r["id"]), why) for (r, _), why in zip(known, reasons, strict=True) if why]
    return stopped


def suppress_switched_off(
    conn: Connection,
    tenant_id: int,
    rows: Sequence[MutableMapping[str, Any]],
    kinds: Mapping[str, NotificationKind],
) -> int:
    """Mark the composed ``messages`` rows that preferences stop as suppressed, with the reason.

    For a batch about to be inserted (one query for every contact's rules);
    ``kinds`` finds each row's kind by name. Returns how many were marked.
    """
    contact_ids = [row["contact_id"] for row in rows if row.get("contact_id") is not None]
    if not contact_ids:
        return 0
    rules = rules_of(conn, tenant_id, contact_ids)
    marked = 0
    for row in rows:
        kind = kinds.get(row["kind"])
        if kind is None or row.get("contact_id") is None:
            continue
        reason = suppression_reason(rules[row["contact_id"]], kind, row["channel"])
        if reason is not None:
            row["status"] = str(MessageStatus.SUPPRESSED)
            row["status_reason"] = reason
            marked += 1
    if marked:  # one batched insert needs the same columns in every row
        for row in rows:
            row.setdefault("status_reason", None)
    return marked
