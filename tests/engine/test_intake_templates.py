"""Intake with a tenant's edited templates: an edit is used from the next batch on."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.domain.default_kinds import BOOKING_CONFIRMATION
from courrier.domain.kinds import Catalogue
from courrier.engine import intake as intake_module
from courrier.engine.intake import Intake
from courrier.store import schema
from courrier.store.contacts import ContactData, upsert_contact
from courrier.store.kinds import save_tenant_kind
from courrier.store.tenants import Tenant, create_tenant
from tests.engine.test_intake import created


@pytest.fixture
def tenant(engine: Engine, clock: ManualClock) -> Tenant:
    """A club whose member m-17 reads English."""
    with engine.begin() as conn:
        tenant = create_tenant(
            conn, "Aéroclub du Lac", from_email="bookings@club.test", now=clock()
        )
        ada = ContactData(name="Ada Lovelace", email="ada@example.com", locale="en")
        upsert_contact(conn, tenant.id, "m-17", ada, now=clock())
    return tenant


def edit_subject(engine: Engine, tenant: Tenant, clock: ManualClock, subject: str) -> None:
    with engine.begin() as conn:
        save_tenant_kind(
            conn,
            tenant.id,
            "booking.confirmation",
            enabled=True,
            custom=False,
            definition={},
            templates={"en": {"subject": subject}},
            now=clock(),
        )


def subject_lines(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        query = select(schema.messages.c.subject_line).order_by(schema.messages.c.id)
        return list(conn.execute(query).scalars())


def test_each_edit_of_a_template_is_used_at_once(
    engine: Engine, clock: ManualClock, tenant: Tenant
) -> None:
    intake = Intake(engine, clock=clock, catalogue=Catalogue([BOOKING_CONFIRMATION]))
    edit_subject(engine, tenant, clock, "First edit")
    intake.accept(tenant, created("B-1"))
    intake.accept(tenant, created("B-2"))
    edit_subject(engine, tenant, clock, "Second edit")
    intake.accept(tenant, created("B-3"))
    edit_subject(engine, tenant, clock, "First edit")
    intake.accept(tenant, created("B-4"))
    assert subject_lines(engine) == ["First edit", "First edit", "Second edit", "First edit"]


def test_only_the_latest_edited_renderers_are_kept(
    engine: Engine, clock: ManualClock, tenant: Tenant
) -> None:
    intake = Intake(engine, clock=clock, catalogue=Catalogue([BOOKING_CONFIRMATION]))
    for n in range(intake_module.RENDERERS_KEPT + 3):
        edit_subject(engine, tenant, clock, f"Edit {n}")
        intake.accept(tenant, created(f"B-{n}"))
    assert len(intake._renderers) == intake_module.RENDERERS_KEPT
    assert subject_lines(engine)[-1] == f"Edit {intake_module.RENDERERS_KEPT + 2}"
