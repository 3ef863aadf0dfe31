"""Outbound webhooks: what happened to messages and addresses, queued for the integrator's URLs.

``enqueue`` runs in the transaction that changes a message's status, so a
status change and the news of it commit together (and a rolled-back change
tells nobody). It costs one query when the tenants have no endpoint: the
dispatcher calls it for every batch. Posting is the worker's job
(engine/webhook_delivery.py); the claim here takes due deliveries under a
lease, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL as the message queue does, so
several workers post side by side and a dead one's deliveries are taken over
when its lease runs out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update

from courrier.errors import NotFoundError
from courrier.store.schema import webhook_attempts, webhook_deliveries, webhook_endpoints
from courrier.store.statements import Prepared, array, in_array

__all__ = ["WebhookEvent", "enqueue"]

E, D, A = webhook_endpoints, webhook_deliveries, webhook_attempts

#: the event types an endpoint may ask for
EVENT_TYPES = (
    "message.sent",
    "message.delivered",
    "message.opened",
    "message.clicked",
    "message.accessed",
    "message.bounced",
    "message.failed",
    "message.suppressed",
    "address.blocked",
)
#: the type of the event ``POST /v1/webhooks/{id}/test`` sends; never filtered out
TEST_EVENT = "webhook.test"


@dataclass(frozen=True)
class WebhookEvent:
    """One status change to tell a tenant's endpoints about."""

    tenant_id: int
    type: str  # one of EVENT_TYPES
    message_id: int | None
    data: Mapping[str, Any] = field(default_factory=dict)  # status, reason, address, kind...


def payload(event: WebhookEvent, now: datetime) -> dict[str, Any]:
    """The JSON body an endpoint receives for ``event``.

    Made plain JSON here (a time as ISO 8601, anything else odd as text), so
    an event carrying a datetime cannot fail the caller's transaction.
    """
    data = {"message_id": event.message_id, "tenant": event.tenant_id, **event.data}
    body = {"type": event.type, "timestamp": now.isoformat(), "data": data}
    plain: dict[str, Any] = json.loads(json.dumps(body, default=_plain))
    return plain


def _plain(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


#: the enabled endpoints of some tenants: read for every batch recorded
_ENDPOINTS = Prepared(
    lambda dialect: select(E.c.id, E.c.tenant_id, E.c.event_types).where(
        in_array(dialect, E.c.tenant_id, "tenants"), E.c.enabled.is_(True)
    )
)


def enqueue(conn: Connection, events: Sequence[WebhookEvent], now: datetime) -> int:
    """Queue a delivery of each event to each matching endpoint; how many were queued."""
    if not events:
        return 0
    tenant_ids = array(conn, sorted({e.tenant_id for e in events}))
    endpoints = conn.execute(_ENDPOINTS(conn), {"tenants": tenant_ids}).all()
    if not endpoints:
        return 0
    rows = [
        _delivery_row(event, endpoint.id, now)
        for event in events
        for endpoint in endpoints
        if endpoint.tenant_id == event.tenant_id
        and (not endpoint.event_types or event.type in endpoint.event_types)
    ]
    if rows:
        conn.execute(insert(D), rows)
    return len(rows)


def enqueue_test(conn: Connection, tenant_id: int, endpoint_id: int, now: datetime) -> int:
    """Queue a test event for one endpoint of the tenant, whatever its types; the delivery id."""
    get_endpoint(conn, tenant_id, endpoint_id)
    event = WebhookEvent(tenant_id, TEST_EVENT, None, {"test": True})
    row = _delivery_row(event, endpoint_id, now)
    return int(conn.execute(insert(D).values(row).returning(D.c.id)).scalar_one())


def _delivery_row(event: WebhookEvent, endpoint_id: int, now: datetime) -> dict[str, Any]:
    return {
        "tenant_id": event.tenant_id,
        "endpoint_id": endpoint_id,
        "message_id": event.message_id,
        "event_type": event.type,
        "payload": payload(event, now),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


# -- endpoints ------------------------------------------------------------

ENDPOINT_COLUMNS = (E.c.id, E.c.url, E.c.event_types, E.c.enabled, E.c.description, E.c.created_at)


def create_endpoint(
    conn: Connection,
    tenant_id: int,
    *,
    url: str,
    secret_encrypted: str,
    event_types: Sequence[str],
    description: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Store an endpoint (its secret already encrypted); the endpoint without the secret."""
    values = {
        "tenant_id": tenant_id,
        "url": url,
        "secret_encrypted": secret_encrypted,
        "event_types": list(event_types),
        "enabled": True,
        "description": description,
        "created_at": now,
    }
    row = conn.execute(insert(E).values(values).returning(*ENDPOINT_COLUMNS)).one()
    return dict(row._mapping)


def list_endpoints(conn: Connection, tenant_id: int) -> list[dict[str, Any]]:
    query = select(*ENDPOINT_COLUMNS).where(E.c.tenant_id == tenant_id).order_by(E.c.id)
    return [dict(row._mapping) for row in conn.execute(query)]


def get_endpoint(conn: Connection, tenant_id: int, endpoint_id: int) -> dict[str, Any]:
    """The tenant's endpoint, secret included; NotFoundError for another tenant's or none."""
    row = conn.execute(
        select(E).where(E.c.id == endpoint_id, E.c.tenant_id == tenant_id)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no webhook endpoint {endpoint_id}")
    return dict(row._mapping)


def delete_endpoint(conn: Connection, tenant_id: int, endpoint_id: int) -> None:
    """Remove an endpoint with its deliveries and their attempts."""
    get_endpoint(conn, tenant_id, endpoint_id)
    deliveries = select(D.c.id).where(D.c.endpoint_id == endpoint_id)
    conn.execute(delete(A).where(A.c.delivery_id.in_(deliveries)))
    conn.execute(delete(D).where(D.c.endpoint_id == endpoint_id))
    conn.execute(delete(E).where(E.c.id == endpoint_id))


def list_deliveries(
    conn: Connection, tenant_id: int, endpoint_id: int, *, before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """An endpoint's deliveries, newest first, each with its ``attempts_log``."""
    get_endpoint(conn, tenant_id, endpoint_id)
    query = select(D).where(D.c.tenant_id == tenant_id, D.c.endpoint_id == endpoint_id)
    if before_id is not None:
        query = query.where(D.c.id < before_id)
    rows = [dict(r._mapping) for r in conn.execute(query.order_by(D.c.id.desc()).limit(limit))]
    logs: dict[int, list[dict[str, Any]]] = {row["id"]: [] for row in rows}
    if rows:
        attempts = select(A).where(A.c.delivery_id.in_(list(logs))).order_by(A.c.id)
        for attempt in conn.execute(attempts).mappings():
            logs[attempt["delivery_id"]].append(dict(attempt))
    return [{**row, "attempts_log": logs[row["id"]]} for row in rows]


# -- the worker's side ----------------------------------------------------


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery leased to one worker, with what posting it needs."""

    id: int
    attempts: int  # counting this one
    payload: dict[str, Any]
    url: str
    secret_encrypted: str


def claim_due(
    conn: Connection, *, now: datetime, worker_id: str, lease_until: datetime, limit: int
) -> list[ClaimedDelivery]:
    """Lease up to ``limit`` pending deliveries due now (or whose lease expired), oldest first.

    The attempt is counted at the claim, so a delivery that crashes its
    worker every time still runs out of attempts.
    """
    due = and_(
        D.c.status == "pending",
        D.c.next_attempt_at <= now,
        or_(D.c.lease_until.is_(None), D.c.lease_until < now),
    )
    picked = select(D.c.id).where(due).order_by(D.c.next_attempt_at, D.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        picked = picked.with_for_update(skip_locked=True)
    # SQLite: the engine's BEGIN IMMEDIATE keeps other writers out until the commit.
    ids = picked.scalar_subquery()
    leased = conn.execute(
        update(D)
        .where(D.c.id.in_(ids))
        .values(lease_owner=worker_id, lease_until=lease_until, attempts=D.c.attempts + 1)
        .returning(D.c.id, D.c.attempts, D.c.payload, D.c.endpoint_id)
    ).all()
    if not leased:
        return []
    endpoints = {
        row.id: row
        for row in conn.execute(
            select(E.c.id, E.c.url, E.c.secret_encrypted).where(
                E.c.id.in_({row.endpoint_id for row in leased})
            )
        )
    }
    claimed = [
        ClaimedDelivery(
            row.id,
            row.attempts,
            row.payload,
            endpoints[row.endpoint_id].url,
            endpoints[row.endpoint_id].secret_encrypted,
        )
        for row in leased
    ]
    return sorted(claimed, key=lambda c: c.id)


def record_attempt(
    conn: Connection,
    delivery_id: int,
    *,
    worker_id: str,
    at: datetime,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    status: str,
    next_attempt_at: datetime | None,
) -> bool:
    """Log one attempt and move the delivery on, if this worker still holds it; whether it did."""
    values: dict[str, Any] = {
        "status": status,
        "last_status_code": status_code,
        "last_error": error,
        "lease_owner": None,
        "lease_until": None,
    }
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    if status == "delivered":
        values["delivered_at"] = at
    result = conn.execute(
        update(D)
        .where(D.c.id == delivery_id, D.c.lease_owner == worker_id, D.c.status == "pending")
        .values(**values)
    )
    if not result.rowcount:
        return False
    conn.execute(
        insert(A).values(
            delivery_id=delivery_id,
            at=at,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
        )
    )
    return True
