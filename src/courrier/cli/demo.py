"""``courrier demo``: a demo tenant with members and bookings, planned through intake end to end.

Running it again reuses the tenant, its members and bookings (the events
carry the same idempotency keys, so nothing is planned twice) and prints a
fresh API key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import typer
from sqlalchemy.engine import Engine

from courrier.cli.runtime import open_database
from courrier.clock import Clock, utcnow
from courrier.console.preferences import preference_url
from courrier.engine.intake import EventInput, Intake, IntakeResult
from courrier.settings import Settings
from courrier.store.contacts import ContactData, upsert_contact
from courrier.store.tenants import Tenant, create_api_key, create_tenant, tenant_by_name

TENANT_NAME = "Aéroclub Demo"
ZONE = "Europe/Paris"

MEMBERS = [
    ContactData(
        name="Camille Martin", email="camille.martin@example.org", locale="fr", roles=["member"]
    ),
    ContactData(
        name="Louis Bernard", email="louis.bernard@example.org", locale="fr", roles=["member"]
    ),
    ContactData(
        name="Ada Lovelace", email="ada@example.org", locale="en", roles=["member", "instructor"]
    ),
]
MEMBER_IDS = ["m-1", "m-2", "m-3"]


@dataclass(frozen=True)
class DemoBooking:
    booking_id: str
    booker: str
    days_ahead: int
    hour: int
    hours: int
    aircraft: str


BOOKINGS = [
    DemoBooking("demo-b-1", "m-1", 2, 10, 2, "F-GKQA (DR400)"),
    DemoBooking("demo-b-2", "m-2", 3, 14, 1, "F-HBCD (C172)"),
    DemoBooking("demo-b-3", "m-3", 7, 9, 3, "F-GKQA (DR400)"),
]


def demo_tenant(engine: Engine, now: datetime) -> tuple[Tenant, str]:
    """The demo tenant (made on first run) and a new API key for it."""
    with engine.begin() as conn:
        tenant = tenant_by_name(conn, TENANT_NAME)
        if tenant is None:
            tenant = create_tenant(
                conn,
                TENANT_NAME,
                from_email="noreply@aeroclub-demo.example",
                from_name=TENANT_NAME,
                reply_to="secretariat@aeroclub-demo.example",
                timezone=ZONE,
                locale="fr",
                now=now,
            )
        key = create_api_key(conn, tenant.id, now=now, label="courrier demo")
        for external_id, member in zip(MEMBER_IDS, MEMBERS, strict=True):
            upsert_contact(conn, tenant.id, external_id, member, now=now)
    return tenant, key


def booking_event(booking: DemoBooking, now: datetime) -> EventInput:
    """``booking.created`` for a flight ``days_ahead`` days from now, at a round local hour."""
    zone = ZoneInfo(ZONE)
    day = now.astimezone(zone).date() + timedelta(days=booking.days_ahead)
    start = datetime.combine(day, time(booking.hour), tzinfo=zone)
    return EventInput(
        type="booking.created",
        idempotency_key=f"{booking.booking_id}-created",
        occurred_at=now,
        subject={
            "type": "booking",
            "id": booking.booking_id,
            "start": start.isoformat(),
            "end": (start + timedelta(hours=booking.hours)).isoformat(),
            "timezone": ZONE,
            "booker": booking.booker,
            "resource": {"id": booking.aircraft.split()[0], "name": booking.aircraft},
            "status": "confirmed",
            "paid": True,
        },
    )


def plan_bookings(
    engine: Engine, tenant: Tenant, clock: Clock, settings: Settings
) -> list[IntakeResult]:
    """Post the demo bookings through intake, as the API would (preference links included)."""
    links = partial(preference_url, settings)
    intake = Intake(engine, clock=clock, preference_links=links)
    now = clock()
    return [intake.accept(tenant, booking_event(booking, now)) for booking in BOOKINGS]


def public_address(settings: Settings) -> str:
    """``COURRIER_BASE_URL`` when set, else where ``courrier serve`` listens."""
    if "base_url" in settings.model_fields_set:
        return settings.base_url.rstrip("/")
    return f"http://{settings.host}:{settings.port}"


def run(settings: Settings, clock: Clock = utcnow) -> None:
    """Make the demo and print what to do next."""
    engine = open_database(settings, upgrade=not settings.is_postgres)
    try:
        tenant, key = demo_tenant(engine, clock())
        results = plan_bookings(engine, tenant, clock, settings)
    finally:
        engine.dispose()
    planned = sum(len(r.messages) for r in results if r.created)
    typer.echo(f"Demo tenant {tenant.name!r}: {len(MEMBERS)} members, {len(BOOKINGS)} bookings")
    if planned:
        typer.echo(f"{planned} mails planned (confirmations and reminders)")
    else:
        typer.echo("the demo bookings were planned before; nothing new to send")
    typer.echo(f"API key (shown once): {key}")
    base = public_address(settings)
    typer.echo(f"Captured mail (with `courrier serve` running, no SMTP URL): {base}/captured")
    typer.echo(f"API docs: {base}/docs")
