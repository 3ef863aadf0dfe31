"""Address health in the database: errors counted per address, blocking, resets, and their audit.

An address that keeps refusing mail hurts the tenant's reputation with every
further attempt, so each counted error bumps its count and, past the
tenant's threshold, the address is blocked: nothing is sent to it until
staff reset it or mail arrives from it (proof that it lives). Every block
and reset leaves an audit row saying who and why. Counts are raised with
``error_count = error_count + n`` so two workers never lose an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, desc, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from courrier.store import webhooks
from courrier.store.schema import address_audit, address_errors, address_health, messages, tenants
from courrier.store.statements import Prepared, array, chunks, in_array

__all__ = [
    "AddressError",
    "blocked_rows",
    "channel_of",
    "get_health",
    "list_health",
    "normalise",
    "record_errors",
    "reset",
    "reset_on_mail",
]

#: the threshold when a tenant row has none (the column's default)
DEFAULT_THRESHOLD = 12


def channel_of(address: str) -> str:
    """``sms`` for a phone number in E.164 (``+33612345678``), else ``email``."""
    return "sms" if address.startswith("+") and address[1:].isdigit() else "email"


def normalise(address: str) -> str:
    """Emails lower-cased (as contact addresses are stored); phone numbers as they are."""
    address = address.strip()
    return address if channel_of(address) == "sms" else address.lower()


@dataclass(frozen=True)
class AddressError:
    """One refusal seen for an address: a synchronous SMTP reply or a DSN."""

    tenant_id: int
    address: str
    source: str  # smtp, dsn
    code: int | None
    status: str | None  # enhanced status code, e.g. 5.1.1
    text: str | None
    message_id: int | None
    counted: bool = True  # False: recorded only (a deferral)


def _insert_or_nothing(conn: Connection, table: Table) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def _ensure(conn: Connection, keys: Iterable[tuple[int, str]], now: datetime) -> None:
    """A health row for each (tenant, address), made with count 0 when missing (race-safe)."""
    rows = [
        {
            "tenant_id": t,
            "address": a,
            "channel": channel_of(a),
            "error_count": 0,
            "blocked": False,
            "updated_at": now,
        }
        for t, a in sorted(set(keys))
    ]
    if rows:
        query = _insert_or_nothing(conn, address_health).on_conflict_do_nothing(
            index_elements=["tenant_id", "address"]
        )
        conn.execute(query, rows)


def _thresholds(conn: Connection, tenant_ids: Iterable[int]) -> dict[int, int]:
    query = select(tenants.c.id, tenants.c.block_threshold).where(
        tenants.c.id.in_(sorted(set(tenant_ids)))
    )
    return {int(i): int(t if t is not None else DEFAULT_THRESHOLD) for i, t in conn.execute(query)}


def describe(error: AddressError) -> str:
    """The error in one line, as shown in last_error and reasons: ``550 5.1.1 User unknown``."""
    text = (error.text or "").strip()
    if error.status and error.status not in text:
        text = f"{error.status} {text}".strip()
    if error.code and not text.startswith(str(error.code)):
        text = f"{error.code} {text}".strip()
    return text[:1000] or "refused"


def record_errors(conn: Connection, errors: Sequence[AddressError], now: datetime) -> list[str]:
    """Store the errors, count the counted ones, block past the threshold; addresses blocked now."""
    errors = [e for e in errors if e.address]
    if not errors:
        return []
    errors = [replace(e, address=normalise(e.address)) for e in errors]
    conn.execute(insert(address_errors), [{**asdict(e), "at": now} for e in errors])
    counted: dict[tuple[int, str], list[AddressError]] = {}
    for e in errors:
        if e.counted:
            counted.setdefault((e.tenant_id, e.address), []).append(e)
    if not counted:
        return []
    _ensure(conn, counted, now)
    for (tenant_id, address), found in counted.items():
        conn.execute(
            update(address_health)
            .where(address_health.c.tenant_id == tenant_id, address_health.c.address == address)
            .values(
                error_count=address_health.c.error_count + len(found),
                last_error=describe(found[-1]),
                last_error_at=now,
                updated_at=now,
            )
        )
    return _block_over_threshold(conn, counted, now)


def _block_over_threshold(
    conn: Connection, keys: dict[tuple[int, str], list[AddressError]], now: datetime
) -> list[str]:
    thresholds = _thresholds(conn, {t for t, _ in keys})
    blocked: list[str] = []
    events: list[webhooks.WebhookEvent] = []
    for tenant_id, address in keys:
        h = address_health.c
        row = conn.execute(
            update(address_health)
            .where(
                h.tenant_id == tenant_id,
                h.address == address,
                h.blocked.is_(False),
                h.error_count > thresholds.get(tenant_id, DEFAULT_THRESHOLD),
            )
            .values(blocked=True, blocked_at=now, updated_at=now)
            .returning(h.error_count, h.last_error, h.channel)
        ).first()
        if row is None:
            continue
        reason = f"{row.error_count} errors; last: {row.last_error}"
        _audit(conn, tenant_id, address, "blocked", "courrier", reason, row.error_count, now)
        data = {"address": address, "channel": row.channel, "error_count": row.error_count}
        data["last_error"] = row.last_error
        events.append(webhooks.WebhookEvent(tenant_id, "address.blocked", None, data))
        blocked.append(address)
    webhooks.enqueue(conn, events, now)
    return blocked


def _audit(
    conn: Connection,
    tenant_id: int,
    address: str,
    action: str,
    actor: str,
    reason: str | None,
    count: int,
    now: datetime,
) -> None:
    conn.execute(
        insert(address_audit).values(
            tenant_id=tenant_id,
            address=address,
            at=now,
            action=action,
            actor=actor[:200],
            reason=reason,
            error_count=count,
        )
    )


def reset(
    conn: Connection,
    tenant_id: int,
    address: str,
    *,
    actor: str,
    reason: str | None,
    now: datetime,
    action: str = "reset",
) -> dict[str, Any] | None:
    """Count back to 0 and unblocked, with an audit row; the new health, None if unknown."""
    h = address_health.c
    where = (h.tenant_id == tenant_id) & (h.address == normalise(address))
    before = conn.execute(select(h.error_count, h.blocked).where(where).with_for_update()).first()
    if before is None:
        return None
    conn.execute(
        update(address_health)
        .where(where)
        .values(error_count=0, blocked=False, blocked_at=None, updated_at=now)
    )
    _audit(conn, tenant_id, normalise(address), action, actor, reason, before.error_count, now)
    return get_health(conn, tenant_id, address)


def reset_on_mail(conn: Connection, tenant_id: int, addresses: Sequence[str], now: datetime) -> int:
    """Mail came from these addresses: those with errors start again from 0; how many."""
    wanted = sorted({normalise(a) for a in addresses if a})
    if not wanted:
        return 0
    h = address_health.c
    query = select(h.address).where(
        h.tenant_id == tenant_id, h.address.in_(wanted), (h.error_count > 0) | h.blocked
    )
    found = list(conn.execute(query).scalars())
    for address in found:
        reason = "mail was received from this address"
        reset(
            conn,
            tenant_id,
            address,
            actor="courrier",
            reason=reason,
            now=now,
            action="mail_received",
        )
    return len(found)


#: a tenant's blocked addresses among some (normalised) addresses: asked for every claimed batch
_BLOCKED = Prepared(
    lambda dialect: select(address_health).where(
        address_health.c.tenant_id == bindparam("tenant"),
        address_health.c.blocked.is_(True),
        in_array(dialect, address_health.c.address, "addresses"),
    )
)


def blocked_rows(
    conn: Connection, keys: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], dict[str, Any]]:
    """The blocked ones among these (tenant, normalised address) pairs, with their health."""
    wanted = set(keys)
    found: dict[tuple[int, str], dict[str, Any]] = {}
    for tenant_id in sorted({t for t, _ in wanted}):
        addresses = sorted(a for t, a in wanted if t == tenant_id)
        for part in chunks(addresses):
            params = {"tenant": tenant_id, "addresses": array(conn, part)}
            for row in conn.execute(_BLOCKED(conn), params):
                found[(tenant_id, row.address)] = dict(row._mapping)
    return found


# --- Reading (API) ----------------------------------------------------------------------------


def list_health(
    conn: Connection,
    tenant_id: int,
    *,
    blocked: bool | None,
    limit: int,
    before_id: int | None,
) -> list[dict[str, Any]]:
    """One page of the tenant's address health rows, newest first."""
    query = select(address_health).where(address_health.c.tenant_id == tenant_id)
    if blocked is not None:
        query = query.where(address_health.c.blocked.is_(blocked))
    if before_id is not None:
        query = query.where(address_health.c.id < before_id)
    query = query.order_by(desc(address_health.c.id)).limit(limit)
    return [dict(r._mapping) for r in conn.execute(query)]


def get_health(conn: Connection, tenant_id: int, address: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(address_health).where(
            address_health.c.tenant_id == tenant_id,
            address_health.c.address == normalise(address),
        )
    ).first()
    return dict(row._mapping) if row else None


def history(
    conn: Connection, tenant_id: int, address: str, *, limit: int = 50
) -> dict[str, list[dict[str, Any]]]:
    """The address's recent errors, audit entries and messages, newest first."""
    address = normalise(address)
    errors = select(address_errors).where(
        address_errors.c.tenant_id == tenant_id, address_errors.c.address == address
    )
    audit = select(address_audit).where(
        address_audit.c.tenant_id == tenant_id, address_audit.c.address == address
    )
    sent = select(
        messages.c.id, messages.c.kind, messages.c.status, messages.c.status_reason
    ).where(messages.c.tenant_id == tenant_id, messages.c.address == address)
    return {
        "errors": _rows(conn, errors.order_by(desc(address_errors.c.id)).limit(limit)),
        "audit": _rows(conn, audit.order_by(desc(address_audit.c.id)).limit(limit)),
        "messages": _rows(conn, sent.order_by(desc(messages.c.id)).limit(limit)),
    }


def _rows(conn: Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(query)]
