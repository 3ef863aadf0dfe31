"""Outbound webhooks: what happened to messages and addresses, queued for the integrator's URLs.

PLACEHOLDER (issue 5, webhooks helper): ``enqueue`` keeps its signature; the
helper fills it in (one pending delivery per enabled endpoint whose types
match, in the caller's transaction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

__all__ = ["WebhookEvent", "enqueue"]

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


@dataclass(frozen=True)
class WebhookEvent:
    """One status change to tell a tenant's endpoints about."""

    tenant_id: int
    type: str  # one of EVENT_TYPES
    message_id: int | None
    data: Mapping[str, Any] = field(default_factory=dict)  # status, reason, address, kind...


def enqueue(conn: Connection, events: Sequence[WebhookEvent], now: datetime) -> int:
    """Queue a delivery of each event to each matching endpoint; how many were queued."""
    return 0
