"""Preferences stop messages, and the history says why: at planning and again at send time."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.console.preferences import preference_url
from courrier.engine.dispatcher import Dispatcher
from courrier.settings import Settings
from courrier.store.contacts import get_contact
from tests.api.conftest import Caller, booking, member
from tests.support.smtp import SmtpServer

BY_CONTACT = "switched off by the contact on the preference page"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


def messages(caller: Caller, kind: str) -> list[dict[str, Any]]:
    found = caller.get("/v1/messages", params={"kind": kind}).json()["items"]
    assert isinstance(found, list)
    return found


def detail(caller: Caller, message: dict[str, Any]) -> dict[str, Any]:
    found = caller.get(f"/v1/messages/{message['id']}").json()
    assert isinstance(found, dict)
    return found


def sent_ids(smtp_server: SmtpServer) -> set[str]:
    """The ids of the messages the SMTP server received (each mail names its message)."""
    return {str(r.message["X-Courrier-Message"]) for r in smtp_server.received}


def switch_off(caller: Caller, settings: Settings, engine: Engine, contact: str, kind: str) -> None:
    """What the contact does on the preference page: untick one kind, keep the rest."""
    with engine.connect() as conn:
        row = get_contact(conn, caller.tenant.id, contact)
    assert row is not None
    path = preference_url(settings, caller.tenant.id, row["id"]).removeprefix(settings.base_url)
    page = caller.client.get(path).text
    ticked = re.findall(r'name="on" value="([^"]+)" checked', page)
    on = [v for v in ticked if not v.startswith(f"{kind}|")]
    assert len(on) < len(ticked), f"{kind} is not on the page"
    data = {"shown": re.findall(r'name="shown" value="([^"]+)"', page), "on": on}
    assert caller.client.post(path, data=data, follow_redirects=False).status_code == 303


def test_a_kind_switched_off_is_recorded_suppressed_with_the_reason_and_not_sent(
    alice: Caller,
    settings: Settings,
    engine: Engine,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    switch_off(alice, settings, engine, "m-17", "booking.confirmation")
    assert alice.post("/v1/events", json=booking()).status_code == 202
    [confirmation] = messages(alice, "booking.confirmation")
    assert confirmation["status"] == "suppressed"
    assert confirmation["status_reason"] == f"{BY_CONTACT} (booking.confirmation, email)"
    dispatcher.run_once()
    assert str(confirmation["id"]) not in sent_ids(smtp_server)
    assert detail(alice, confirmation)["status"] == "suppressed"


def test_a_reminder_switched_off_after_planning_is_suppressed_when_due(
    alice: Caller,
    settings: Settings,
    engine: Engine,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    assert alice.post("/v1/events", json=booking()).status_code == 202
    [reminder] = messages(alice, "booking.reminder_1h")
    assert reminder["status"] == "planned"
    switch_off(alice, settings, engine, "m-17", "booking.reminder_1h")
    clock.set(datetime.fromisoformat(reminder["due_at"].replace("Z", "+00:00")))
    dispatcher.run_once()
    assert str(reminder["id"]) not in sent_ids(smtp_server)
    assert sent_ids(smtp_server), "the other messages due by then went out"
    stored = detail(alice, reminder)
    assert stored["status"] == "suppressed"
    assert stored["status_reason"] == f"{BY_CONTACT} (booking.reminder_1h, email)"
    assert stored["timeline"][-1]["status"] == "suppressed"


def test_staff_switching_every_kind_off_never_stops_a_password_reset(
    alice: Caller, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    everything_off = {"preferences": [{"kind": "*", "enabled": False}]}
    assert alice.put("/v1/contacts/m-17/preferences", json=everything_off).status_code == 200
    reset = {
        "type": "member.password_reset",
        "idempotency_key": "reset-1",
        "occurred_at": "2026-03-01T09:00:00+00:00",
        "subject": {"type": "membership", "id": "MB-1", "member": "m-17"},
        "payload": {"link": "https://club.example.org/reset/3f9c2a"},
    }
    assert alice.post("/v1/events", json=reset).status_code == 202
    [message] = messages(alice, "member.password_reset")
    assert message["status"] == "due"
    dispatcher.run_once()
    assert str(message["id"]) in sent_ids(smtp_server)
    locked = {"preferences": [{"kind": "member.password_reset", "enabled": False}]}
    response = alice.put("/v1/contacts/m-17/preferences", json=locked)
    assert response.status_code == 422
    assert "cannot be switched off" in response.json()["error"]["message"]
