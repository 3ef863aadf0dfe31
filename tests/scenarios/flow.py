"""What the per-kind scenario tests share: people, events posted through the API, mail received."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from courrier.settings import Settings
from tests.api.conftest import Caller, member
from tests.support.dispatching import dispatcher_for
from tests.support.smtp import SmtpServer

#: external id -> (name, email, staff profiles, booking copy)
PEOPLE: dict[str, tuple[str, str, list[str], str]] = {
    "m-1": ("Camille Martin", "camille@example.org", [], "off"),
    "m-2": ("Louis Bernard", "louis@example.org", [], "off"),
    "m-3": ("Ana Silva", "ana@example.org", [], "off"),
    "s-1": ("Sam Rivera", "sam@club.example", ["category:plumbing"], "each"),
    "s-2": ("Dana Moreau", "dana@club.example", ["default_manager"], "digest"),
    "s-3": ("Eli Kaplan", "eli@club.example", ["validities:all"], "off"),
    "s-4": ("Noor Haddad", "noor@club.example", ["category:plumbing"], "off"),
}


def email_of(contact: str) -> str:
    return PEOPLE[contact][1]


@pytest.fixture
def dispatcher(settings: Settings, engine: Engine, clock: ManualClock) -> Iterator[Dispatcher]:
    with dispatcher_for(engine, settings, clock, "scenario") as worker:
        yield worker


@pytest.fixture
def club(alice: Caller) -> Caller:
    """Alpha with members m-1..m-3 and staff s-1..s-4 (profiles and booking copies)."""
    for contact, (name, email, profiles, copy) in PEOPLE.items():
        body = member(name=name, email=email, staff_profiles=profiles, booking_copy=copy)
        response = alice.put(f"/v1/contacts/{contact}", json=body)
        assert response.status_code in (200, 201), response.text
    return alice


def post(
    caller: Caller,
    clock: ManualClock,
    event_type: str,
    subject: dict[str, Any],
    payload: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Post an event now; the messages it planned."""
    body: dict[str, Any] = {
        "type": event_type,
        "idempotency_key": f"{event_type}-{subject['id']}-{clock().isoformat()}",
        "occurred_at": clock().isoformat(),
        "subject": subject,
    }
    if payload is not None:
        body["payload"] = payload
    response = caller.post("/v1/events", json=body)
    assert response.status_code == 202, response.text
    return list(response.json()["messages"])


def send_due(dispatcher: Dispatcher) -> None:
    while dispatcher.run_once():
        pass


def received_for(
    caller: Caller, smtp_server: SmtpServer, planned: list[dict[str, Any]], kind: str
) -> list[str]:
    """Who received the mails of ``kind`` among ``planned`` (sorted addresses, from the SMTP server)."""
    wanted = {
        caller.get(f"/v1/messages/{m['id']}").json()["message_id_header"]
        for m in planned
        if m["kind"] == kind
    }
    return sorted(
        address
        for mail in smtp_server.received
        if mail.message["Message-ID"] in wanted
        for address in mail.recipients
    )
