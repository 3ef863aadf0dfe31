"""An API on the test database with two tenants, each with its own key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from courrier.api.app import create_app
from courrier.clock import Clock, ManualClock
from courrier.settings import Settings
from courrier.store.tenants import Tenant, create_api_key, create_tenant


@dataclass
class Caller:
    """A tenant and an HTTP client that sends its key."""

    tenant: Tenant
    key: str
    client: TestClient

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def get(self, url: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.get(url, headers=headers, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.put(url, headers=headers, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.post(url, headers=headers, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.patch(url, headers=headers, **kwargs)


def add_tenant(engine: Engine, clock: Clock, name: str) -> tuple[Tenant, str]:
    with engine.begin() as conn:
        tenant = create_tenant(
            conn,
            name,
            from_email=f"noreply@{name.lower()}.example",
            from_name=name,
            reply_to=f"desk@{name.lower()}.example",
            timezone="Europe/Paris",
            locale="en",
            now=clock(),
        )
        return tenant, create_api_key(conn, tenant.id, now=clock())


@pytest.fixture
def client(settings: Settings, engine: Engine, clock: ManualClock) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine, clock=clock)) as test_client:
        yield test_client


@pytest.fixture
def caller_for(engine: Engine, clock: ManualClock, client: TestClient) -> Callable[[str], Caller]:
    def make(name: str) -> Caller:
        tenant, key = add_tenant(engine, clock, name)
        return Caller(tenant, key, client)

    return make


@pytest.fixture
def alice(caller_for: Callable[[str], Caller]) -> Caller:
    """The tenant most tests act as."""
    return caller_for("Alpha")


@pytest.fixture
def bob(caller_for: Callable[[str], Caller]) -> Caller:
    """Another tenant, who must never see Alpha's data."""
    return caller_for("Bravo")


def booking(booking_id: str = "B-1001", booker: str = "m-17", **changes: Any) -> dict[str, Any]:
    """A valid ``booking.created`` event body."""
    event: dict[str, Any] = {
        "type": "booking.created",
        "idempotency_key": f"{booking_id}-created",
        "occurred_at": "2026-03-01T09:00:00+00:00",
        "subject": {
            "type": "booking",
            "id": booking_id,
            "start": "2026-03-05T10:00:00+01:00",
            "end": "2026-03-05T12:00:00+01:00",
            "timezone": "Europe/Paris",
            "booker": booker,
            "resource": {"id": "F-GKQA", "name": "F-GKQA (DR400)"},
            "status": "confirmed",
            "paid": False,
        },
    }
    event.update(changes)
    return event


def member(
    name: str = "Camille Martin", email: str = "camille@example.org", **changes: Any
) -> dict[str, Any]:
    """A valid contact body."""
    body: dict[str, Any] = {
        "name": name,
        "email": email,
        "locale": "fr",
        "timezone": "Europe/Paris",
        "roles": ["member"],
    }
    body.update(changes)
    return body
