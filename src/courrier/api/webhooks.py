"""Webhook endpoints over HTTP: where a tenant wants to hear about its messages, and what was sent.

The endpoint's secret is made here and shown once, in the answer to its
creation; it is stored encrypted and never returned again (delete the
endpoint and create another to change it). A URL must be http(s) and
resolve to public addresses only, unless the operator allowed a network
(``COURRIER_WEBHOOK_ALLOWED_NETWORKS``); the worker checks again before
each post.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from courrier.api.auth import AppClock, AppSettings, CurrentTenant, DbEngine
from courrier.api.paging import decode_cursor, next_cursor
from courrier.domain import webhook_signing
from courrier.engine.webhook_urls import IPNetwork, UrlNotAllowed, target
from courrier.errors import ValidationError
from courrier.secretbox import SecretBox
from courrier.store import webhooks as store
from courrier.store.db import read_only

router = APIRouter(tags=["webhooks"])

Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=100, description="`next` of the previous page.")]


class EndpointIn(BaseModel):
    url: str = Field(min_length=1, max_length=2000, description="https:// URL to post events to.")
    event_types: list[str] = Field(
        default_factory=list,
        max_length=len(store.EVENT_TYPES),
        description="Types to receive (" + ", ".join(store.EVENT_TYPES) + "); empty: all.",
    )
    description: str | None = Field(default=None, max_length=200)


class EndpointOut(BaseModel):
    id: int
    url: str
    event_types: list[str]
    enabled: bool
    description: str | None
    created_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(
        description="whsec_...: verifies the webhook-signature header. Shown this once."
    )


class AttemptOut(BaseModel):
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    id: int
    event_type: str
    message_id: int | None
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried next.")
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]
    attempts_log: list[AttemptOut]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next: str | None = Field(description="Cursor of the next (older) page; null on the last.")


class TestSent(BaseModel):
    delivery_id: int


def _checked(body: EndpointIn, networks: tuple[IPNetwork, ...]) -> None:
    """422 naming the field for an unknown event type or a URL Courrier will not post to."""
    for index, name in enumerate(body.event_types):
        if name not in store.EVENT_TYPES:
            raise ValidationError(
                f"{name!r} is not an event type; use " + ", ".join(store.EVENT_TYPES),
                field=f"event_types.{index}",
            )
    try:
        target(body.url, networks)
    except UrlNotAllowed as exc:
        raise ValidationError(str(exc), field="url") from exc


@router.post(
    "/v1/webhooks",
    status_code=201,
    response_model=EndpointCreated,
    summary="Add a webhook endpoint (its secret is shown once)",
)
def create_endpoint(
    body: EndpointIn,
    tenant: CurrentTenant,
    engine: DbEngine,
    settings: AppSettings,
    clock: AppClock,
) -> EndpointCreated:
    _checked(body, settings.webhook_networks)
    secret = webhook_signing.new_secret()
    encrypted = SecretBox(settings).encrypt(secret)
    with engine.begin() as conn:
        row = store.create_endpoint(
            conn,
            tenant.id,
            url=body.url.strip(),
            secret_encrypted=encrypted,
            event_types=list(dict.fromkeys(body.event_types)),
            description=body.description,
            now=clock(),
        )
    return EndpointCreated(**row, secret=secret)


@router.get("/v1/webhooks", response_model=list[EndpointOut], summary="The tenant's endpoints")
def list_endpoints(tenant: CurrentTenant, engine: DbEngine) -> list[EndpointOut]:
    with read_only(engine) as conn:
        return [EndpointOut.model_validate(row) for row in store.list_endpoints(conn, tenant.id)]


@router.delete(
    "/v1/webhooks/{endpoint_id}", status_code=204, summary="Remove an endpoint and its deliveries"
)
def delete_endpoint(endpoint_id: Id, tenant: CurrentTenant, engine: DbEngine) -> Response:
    with engine.begin() as conn:
        store.delete_endpoint(conn, tenant.id, endpoint_id)
    return Response(status_code=204)


@router.get(
    "/v1/webhooks/{endpoint_id}/deliveries",
    response_model=DeliveryPage,
    summary="What was posted to an endpoint, newest first, with every attempt",
)
def list_deliveries(
    endpoint_id: Id,
    tenant: CurrentTenant,
    engine: DbEngine,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> DeliveryPage:
    before = decode_cursor(cursor)
    with read_only(engine) as conn:
        rows = store.list_deliveries(conn, tenant.id, endpoint_id, before_id=before, limit=limit)
    items = [
        DeliveryOut.model_validate(
            {
                **row,
                "next_attempt_at": row["next_attempt_at"] if row["status"] == "pending" else None,
            }
        )
        for row in rows
    ]
    return DeliveryPage(items=items, next=next_cursor([row["id"] for row in rows], limit))


@router.post(
    "/v1/webhooks/{endpoint_id}/test",
    status_code=202,
    response_model=TestSent,
    summary="Queue a webhook.test event for this endpoint",
)
def test_endpoint(
    endpoint_id: Id, tenant: CurrentTenant, engine: DbEngine, clock: AppClock
) -> TestSent:
    with engine.begin() as conn:
        return TestSent(delivery_id=store.enqueue_test(conn, tenant.id, endpoint_id, clock()))
