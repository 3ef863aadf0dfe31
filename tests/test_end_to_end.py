"""The whole path over HTTP: contact → event → dispatcher → mail received by a real SMTP server.

The dispatcher runs in a thread as in ``courrier serve``, woken by intake; the
mail arrives at aiosmtpd on loopback and its timeline is read back over the API.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage

import icalendar
import pytest
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from courrier.api.app import create_app
from courrier.channels.email import SmtpSender
from courrier.clock import utcnow
from courrier.engine.dispatcher import Dispatcher
from courrier.engine.wakeup import Wakeup
from courrier.settings import Settings
from tests.api.conftest import add_tenant, booking, member
from tests.support.smtp import SmtpServer


@pytest.fixture
def running(settings: Settings, engine: Engine, smtp_server: SmtpServer) -> Iterator[TestClient]:
    """API and a dispatcher thread sharing a wake-up, as ``courrier serve`` runs them."""
    wakeup = Wakeup()
    target = settings.smtp
    assert target is not None
    sender = SmtpSender(target, pool_size=2, timeout=5.0)
    stop = threading.Event()
    thread = threading.Thread(
        target=Dispatcher(engine, settings, sender, wakeup=wakeup).run, args=(stop,)
    )
    thread.start()
    try:
        with TestClient(create_app(settings, engine=engine, wakeup=wakeup)) as client:
            yield client
    finally:
        stop.set()
        wakeup.poke()
        thread.join(10)
        wakeup.close()
        sender.close()


def parts(message: EmailMessage) -> dict[str, str | bytes]:
    found: dict[str, str | bytes] = {}
    for part in message.walk():
        if not part.is_multipart():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found.setdefault(part.get_content_type(), payload)
    return found


def timeline_entries(client: TestClient, headers: dict[str, str], message_id: int) -> list[str]:
    deadline = time.monotonic() + 5
    while True:
        entries = [
            s["entry"]
            for s in client.get(f"/v1/messages/{message_id}", headers=headers).json()["timeline"]
        ]
        if "sent" in entries or time.monotonic() > deadline:
            return entries
        time.sleep(0.05)


def test_a_booking_confirmation_goes_out_with_its_invitation(
    running: TestClient, engine: Engine, smtp_server: SmtpServer
) -> None:
    _tenant, key = add_tenant(engine, utcnow, "Alpha")
    headers = {"Authorization": f"Bearer {key}"}
    assert running.put("/v1/contacts/m-17", json=member(), headers=headers).status_code == 201
    body = booking()
    body["subject"]["paid"] = True  # no payment reminder; its start is past: no reminders
    accepted = running.post("/v1/events", json=body, headers=headers)
    assert accepted.status_code == 202
    [planned] = accepted.json()["messages"]

    [received] = smtp_server.wait_for(1, timeout=10)
    mail = received.message
    assert received.recipients == ["camille@example.org"]
    assert mail["From"].addresses[0].addr_spec == "noreply@alpha.example"
    assert mail["From"].addresses[0].display_name == "Alpha"
    assert str(mail["Reply-To"]) == "desk@alpha.example"
    stored = running.get(f"/v1/messages/{planned['id']}", headers=headers).json()
    assert str(mail["Subject"]) == stored["subject_line"]
    found = parts(mail)
    assert "text/plain" in found and "text/html" in found
    calendar = icalendar.Calendar.from_ical(found["text/calendar"])
    [vevent] = calendar.walk("VEVENT")
    assert vevent.decoded("DTSTART").isoformat() == "2026-03-05T10:00:00+01:00"

    entries = timeline_entries(running, headers, planned["id"])
    assert entries[0] == "planned"
    assert entries.index("claimed") < entries.index("sent")
    assert running.get(f"/v1/messages/{planned['id']}", headers=headers).json()["status"] == "sent"
