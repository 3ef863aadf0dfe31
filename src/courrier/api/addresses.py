"""``/v1/addresses``: the health of the tenant's recipient addresses, and staff resets.

Staff look here when a member says "I get nothing": whether the address is
blocked, after which errors, which messages were concerned, and who reset
it before. A reset names the person and keeps which API key made it, so the
audit says who unblocked an address and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy import Connection, select

from courrier.api.auth import AppClock, CurrentTenant, DbEngine, bearer_key
from courrier.api.paging import decode_cursor, next_cursor
from courrier.errors import NotFoundError
from courrier.store import health
from courrier.store.db import read_only
from courrier.store.schema import api_keys
from courrier.store.tenants import KEY_PREFIX, PREFIX_LENGTH

router = APIRouter(prefix="/v1/addresses", tags=["addresses"])

Address = Annotated[
    str,
    Path(min_length=1, max_length=320, pattern=r"^[^\x00-\x1f/]+$", description="email or phone"),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class AddressHealth(BaseModel):
    address: str
    channel: str
    error_count: int
    blocked: bool
    blocked_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None


class AddressPage(BaseModel):
    items: list[AddressHealth]
    next_cursor: str | None


class AddressErrorOut(BaseModel):
    at: datetime
    source: str
    code: int | None
    status: str | None
    text: str | None
    message_id: int | None
    counted: bool


class AddressMessage(BaseModel):
    id: int
    kind: str
    status: str
    reason: str | None


class AuditEntry(BaseModel):
    at: datetime
    action: str
    actor: str
    reason: str | None
    error_count: int


class AddressDetail(AddressHealth):
    errors: list[AddressErrorOut]
    messages: list[AddressMessage]
    audit: list[AuditEntry]


class ResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text
    by: Name | None = None


def _health(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in AddressHealth.model_fields}


@router.get("", response_model=AddressPage, summary="Addresses with errors, or blocked")
def list_addresses(
    tenant: CurrentTenant,
    engine: DbEngine,
    blocked: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> AddressPage:
    """Every address Courrier has an error for (``blocked=true``: only the blocked), newest first."""
    before = decode_cursor(cursor)
    with read_only(engine) as conn:
        rows = health.list_health(conn, tenant.id, blocked=blocked, limit=limit, before_id=before)
    return AddressPage(
        items=[AddressHealth.model_validate(_health(row)) for row in rows],
        next_cursor=next_cursor([int(row["id"]) for row in rows], limit),
    )


def _detail(conn: Connection, tenant_id: int, address: str) -> AddressDetail:
    row = health.get_health(conn, tenant_id, address)
    if row is None:
        raise NotFoundError(f"no record of the address {address!r}")
    found = health.history(conn, tenant_id, address)
    return AddressDetail.model_validate(
        {
            **_health(row),
            "errors": found["errors"],
            "messages": [
                {
                    "id": m["id"],
                    "kind": m["kind"],
                    "status": m["status"],
                    "reason": m["status_reason"],
                }
                for m in found["messages"]
            ],
            "audit": found["audit"],
        }
    )


@router.get("/{address}", response_model=AddressDetail, summary="One address's health")
def read_address(address: Address, tenant: CurrentTenant, engine: DbEngine) -> AddressDetail:
    """The count, the block, the recent errors, the messages concerned and the audit."""
    with read_only(engine) as conn:
        return _detail(conn, tenant.id, address)


@router.post("/{address}/reset", response_model=AddressDetail, summary="Unblock an address")
def reset_address(
    address: Address,
    body: ResetIn,
    request: Request,
    tenant: CurrentTenant,
    engine: DbEngine,
    clock: AppClock,
) -> AddressDetail:
    """Count back to 0 and unblocked; the audit keeps who (``by`` and the API key) and why."""
    with engine.begin() as conn:
        actor = f"{body.by or 'staff'} (key {key_name(conn, tenant.id, bearer_key(request))})"
        done = health.reset(conn, tenant.id, address, actor=actor, reason=body.reason, now=clock())
        if done is None:
            raise NotFoundError(f"no record of the address {address!r}")
        return _detail(conn, tenant.id, address)


def key_name(conn: Connection, tenant_id: int, key: str) -> str:
    """The key's label when it has one, else its prefix (never the key)."""
    prefix = key[len(KEY_PREFIX) : len(KEY_PREFIX) + PREFIX_LENGTH]
    label = conn.execute(
        select(api_keys.c.label).where(
            api_keys.c.tenant_id == tenant_id, api_keys.c.prefix == prefix
        )
    ).scalar()
    return str(label) if label else prefix
