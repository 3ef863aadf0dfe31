"""Property: however a booking is changed, its pending reminders are what planning it afresh gives.

Each example creates a booking, changes it a few times (start, participants,
status, check-in time) and compares the messages still to send with those
of a second booking created directly in the final state, with the same
creation time.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.engine.intake import EventInput, Intake
from courrier.store import schema
from courrier.store.contacts import ContactData, upsert_contact
from courrier.store.tenants import Tenant, create_tenant

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CREATED = NOW.isoformat()
ZONES = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe"]
numbers = itertools.count()


@pytest.fixture
def tenant(engine: Engine) -> Tenant:
    with engine.begin() as conn:
        tenant = create_tenant(conn, "Club", from_email="b@club.test", now=NOW)
        for n in range(3):
            upsert_contact(conn, tenant.id, f"m-{n}", ContactData(email=f"m{n}@x.test"), now=NOW)
    return tenant


states = st.fixed_dictionaries(
    {
        "minutes_ahead": st.integers(-120, 60 * 24 * 40),
        "participants": st.lists(st.sampled_from(["m-1", "m-2"]), unique=True, max_size=2),
        "status": st.sampled_from(["confirmed", "confirmed", "pending"]),
        "checkin_before": st.none() | st.integers(0, 90),
        "timezone": st.sampled_from(ZONES),
    }
)


def subject(booking_id: str, state: dict[str, Any]) -> dict[str, Any]:
    start = NOW + timedelta(minutes=state["minutes_ahead"])
    body = {
        "type": "booking",
        "id": booking_id,
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "timezone": state["timezone"],
        "booker": "m-0",
        "participants": state["participants"],
        "status": state["status"],
        "paid": True,
        "created_at": CREATED,
    }
    if state["checkin_before"] is not None:
        body["checkin_at"] = (start - timedelta(minutes=state["checkin_before"])).isoformat()
    return body


def pending(engine: Engine, booking_id: str) -> set[tuple[str, str, datetime]]:
    m, s = schema.messages, schema.subjects
    query = (
        select(m.c.kind, m.c.address, m.c.due_at)
        .join(s, s.c.id == m.c.subject_id)
        .where(s.c.external_id == booking_id, m.c.status.in_(["planned", "due"]))
        .where(m.c.kind.like("booking.reminder%") | (m.c.kind == "booking.checkin_notice"))
    )
    with engine.connect() as conn:
        return {tuple(row) for row in conn.execute(query)}  # type: ignore[misc]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(first=states, changes=st.lists(states, min_size=1, max_size=4))
def test_reminders_after_any_changes_are_those_of_the_final_state(
    engine: Engine, tenant: Tenant, first: dict[str, Any], changes: list[dict[str, Any]]
) -> None:
    n = next(numbers)
    intake = Intake(engine, clock=ManualClock(NOW))
    changed, fresh = f"B-{n}", f"F-{n}"
    events = [("booking.created", first)] + [("booking.modified", c) for c in changes]
    for step, (kind, state) in enumerate(events):
        intake.accept(tenant, EventInput(kind, f"{changed}-{step}", NOW, subject(changed, state)))
    intake.accept(
        tenant, EventInput("booking.created", f"{fresh}-0", NOW, subject(fresh, changes[-1]))
    )
    assert pending(engine, changed) == pending(engine, fresh)
