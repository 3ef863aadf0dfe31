"""Follow-ups of an important message: sent while it is not read, stopped by a read or a reply.

A tenant defines a kind carrying a follow-up policy through the kinds API,
an event plans its message, and a dispatcher sends everything to a real SMTP
server while a manual clock moves on.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, update
from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.engine import followups
from courrier.engine.dispatcher import Dispatcher
from courrier.render.links import LinkSigner
from courrier.settings import Settings
from courrier.store.schema import inbound_mails, messages
from tests.api.conftest import Caller, member
from tests.scenarios.flow import send_due
from tests.support.smtp import SmtpServer

KIND = "contract.signature_request"
TEXT = "Please sign the lease for {{ subject.title }} before Friday."
DELAYS = [60, 1440, 4320]
LINK = re.compile(r"http://courrier\.test/t/v/([A-Za-z0-9_.\-]+)")


@pytest.fixture
def signer(settings: Settings) -> LinkSigner:
    """The installation's link signer: the worker's own makes the same links."""
    return LinkSigner(settings.signing_key(), settings.base_url)


def a_kind(follow_up: Any, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": KIND,
        "subject_type": "contract",
        "triggers": ["contract.sent"],
        "recipients": ["signer"],
        "follow_up": follow_up,
        "templates": {
            "en": {
                "subject": "Your lease to sign",
                "text": TEXT,
                "html": f"<html><body><p>{TEXT}</p></body></html>",
            }
        },
    }
    body.update(changes)
    return body


def send_contract(caller: Caller, clock: ManualClock, follow_up: Any = None) -> int:
    """m-1 gets the signature request of contract C-1; the original's id."""
    assert caller.put("/v1/contacts/m-1", json=member(locale="en")).status_code in (200, 201)
    policy = follow_up if follow_up is not None else {"delays_minutes": DELAYS}
    response = caller.post("/v1/kinds", json=a_kind(policy))
    assert response.status_code == 201, response.text
    response = caller.post(
        "/v1/events",
        json={
            "type": "contract.sent",
            "idempotency_key": "C-1-sent",
            "occurred_at": clock().isoformat(),
            "subject": {"type": "contract", "id": "C-1", "signer": "m-1", "title": "Flat 4B"},
        },
    )
    assert response.status_code == 202, response.text
    (planned,) = response.json()["messages"]
    return int(planned["id"])


def follow_ups_of(caller: Caller, original: int) -> list[dict[str, Any]]:
    items = caller.get("/v1/messages", params={"kind": KIND}).json()["items"]
    details = [caller.get(f"/v1/messages/{m['id']}").json() for m in items if m["id"] != original]
    return sorted(details, key=lambda m: m["due_at"])


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_three_follow_ups_of_an_unread_message_leave_at_their_times(
    alice: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    signer: LinkSigner,
) -> None:
    original = send_contract(alice, clock)
    sent_at = clock()
    send_due(dispatcher)
    assert len(smtp_server.received) == 1
    first = smtp_server.received[0].message

    planned = follow_ups_of(alice, original)
    assert [m["status"] for m in planned] == ["planned"] * 3
    assert [at(m["due_at"]) for m in planned] == [sent_at + timedelta(minutes=d) for d in DELAYS]
    reasons = [m["timeline"][0]["reason"] for m in planned]
    assert reasons == [f"follow-up {n} of 3 of message {original}" for n in (1, 2, 3)]

    clock.advance(timedelta(minutes=59))
    send_due(dispatcher)
    assert len(smtp_server.received) == 1  # not before the hour
    for count, delay in enumerate(DELAYS, start=2):
        clock.set(sent_at + timedelta(minutes=delay))
        send_due(dispatcher)
        assert len(smtp_server.received) == count

    for mail in smtp_server.received[1:]:
        reminder = mail.message
        assert reminder["Subject"] == "Reminder: Your lease to sign"
        assert reminder["To"] == first["To"]
        assert reminder["Message-ID"] != first["Message-ID"]
        text = reminder.get_body(("plain",)).get_content()
        html = reminder.get_body(("html",)).get_content()
        assert "Please sign the lease for Flat 4B before Friday." in text
        assert "Please sign the lease for Flat 4B before Friday." in html
        found = LINK.search(text)
        assert found is not None
        assert signer.verify("original", found.group(1)) == [original]
        assert found.group(0) in html
    sent = follow_ups_of(alice, original)
    assert [at(m["sent_at"]) for m in sent] == [sent_at + timedelta(minutes=d) for d in DELAYS]
    assert "reminder (2 of 3)" in sent[1]["body_text"]


def test_reading_the_original_cancels_the_remaining_follow_ups_with_the_reason(
    alice: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    engine: Engine,
    signer: LinkSigner,
) -> None:
    original = send_contract(alice, clock)
    send_due(dispatcher)
    clock.advance(timedelta(minutes=60))
    send_due(dispatcher)
    assert len(smtp_server.received) == 2

    with engine.begin() as conn:  # what the original's page does when it is followed
        stopped = followups.stop_follow_ups(conn, [original], "the original was read", clock())
    assert stopped == 2
    clock.advance(timedelta(days=5))
    send_due(dispatcher)
    assert len(smtp_server.received) == 2

    later = follow_ups_of(alice, original)
    assert [m["status"] for m in later] == ["sent", "cancelled", "cancelled"]
    for message in later[1:]:
        assert message["status_reason"] == "the original was read"
        assert message["timeline"][-1]["entry"] == "cancelled"


def test_following_the_link_in_a_reminder_stops_the_rest(
    alice: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    signer: LinkSigner,
) -> None:
    original = send_contract(alice, clock)
    send_due(dispatcher)
    clock.advance(timedelta(minutes=60))
    send_due(dispatcher)
    reminder = smtp_server.received[-1].message
    found = LINK.search(reminder.get_body(("plain",)).get_content())
    assert found is not None

    page = alice.client.get(found.group(0).removeprefix("http://courrier.test"))
    assert page.status_code == 200
    assert "Please sign the lease for Flat 4B before Friday." in page.text
    clock.advance(timedelta(days=5))
    send_due(dispatcher)

    assert len(smtp_server.received) == 2
    assert alice.get(f"/v1/messages/{original}").json()["status"] == "accessed"
    later = follow_ups_of(alice, original)
    assert [m["status"] for m in later] == ["sent", "cancelled", "cancelled"]
    assert {m["status_reason"] for m in later[1:]} == {"the original was accessed"}


@pytest.mark.parametrize(
    ("status", "why"),
    [("accessed", "was read: its link was followed"), ("bounced", "bounced: a reminder would too")],
)
def test_an_original_accessed_or_bounced_meanwhile_stops_its_follow_ups_at_send_time(
    alice: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    engine: Engine,
    signer: LinkSigner,
    status: str,
    why: str,
) -> None:
    original = send_contract(alice, clock)
    send_due(dispatcher)
    with engine.begin() as conn:  # read (or bounced), but nobody stopped the follow-ups
        conn.execute(update(messages).where(messages.c.id == original).values(status=status))
    clock.advance(timedelta(days=5))
    send_due(dispatcher)

    assert len(smtp_server.received) == 1
    later = follow_ups_of(alice, original)
    assert {m["status"] for m in later} == {"cancelled"}
    assert later[0]["status_reason"] == f"the original (message {original}) {why}"
    assert later[0]["timeline"][-1]["entry"] == "checked"


def test_a_reply_to_the_original_stops_its_follow_ups_at_send_time(
    alice: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    engine: Engine,
    signer: LinkSigner,
) -> None:
    original = send_contract(alice, clock)
    send_due(dispatcher)
    clock.advance(timedelta(minutes=60))
    send_due(dispatcher)
    reminder = follow_ups_of(alice, original)[0]
    with engine.begin() as conn:  # the member answered the reminder: filed as a reply to it
        conn.execute(
            insert(inbound_mails).values(
                tenant_id=alice.tenant.id,
                content_hash="a" * 64,
                kind="member",
                reply_to_message_id=reminder["id"],
                from_addr="camille@example.org",
                to_addrs=["desk@alpha.example"],
                cc_addrs=[],
                received_at=clock(),
                size=100,
                headers=[],
                defects=[],
            )
        )
    clock.advance(timedelta(days=5))
    send_due(dispatcher)

    assert len(smtp_server.received) == 2
    later = follow_ups_of(alice, original)
    assert [m["status"] for m in later] == ["sent", "cancelled", "cancelled"]
    assert later[1]["status_reason"] == f"a reply to the original (message {original}) arrived"


def test_an_original_refused_by_the_server_has_no_follow_ups(
    alice: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    signer: LinkSigner,
) -> None:
    original = send_contract(alice, clock)
    smtp_server.script("550 5.1.1 User unknown")
    send_due(dispatcher)
    clock.advance(timedelta(days=5))
    send_due(dispatcher)
    assert smtp_server.received == []
    assert alice.get(f"/v1/messages/{original}").json()["status"] == "failed"
    assert follow_ups_of(alice, original) == []


def test_french_follow_ups_say_rappel(
    alice: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    signer: LinkSigner,
) -> None:
    french = member(locale="fr")
    assert alice.put("/v1/contacts/m-1", json=french).status_code in (200, 201)
    kind = a_kind({"delays_minutes": [90]})
    kind["templates"]["fr"] = {"subject": "Votre bail", "text": "Signez.", "html": "<p>Signez.</p>"}
    assert alice.post("/v1/kinds", json=kind).status_code == 201
    event = {
        "type": "contract.sent",
        "idempotency_key": "C-2",
        "occurred_at": clock().isoformat(),
        "subject": {"type": "contract", "id": "C-2", "signer": "m-1", "title": "Flat 4B"},
    }
    assert alice.post("/v1/events", json=event).status_code == 202
    send_due(dispatcher)
    clock.advance(timedelta(minutes=90))
    send_due(dispatcher)
    reminder = smtp_server.received[-1].message
    assert reminder["Subject"] == "Rappel : Votre bail"
    assert "Ceci est un rappel (1 sur 1)" in reminder.get_body(("plain",)).get_content()


@pytest.mark.parametrize(
    ("delays", "words"),
    [
        ([60, 120, 180, 240], "at most 3 follow-ups"),
        ([120, 120], "each follow-up must come later than the one before"),
        ([600, 300], "each follow-up must come later than the one before"),
        ([30, 600], "the first follow-up must come at least 60 minutes after sending"),
    ],
)
def test_a_policy_breaking_a_rule_is_refused_naming_the_field(
    alice: Caller, delays: list[int], words: str
) -> None:
    for response in (
        alice.post("/v1/kinds", json=a_kind({"delays_minutes": delays})),
        alice.patch(
            "/v1/kinds/booking.confirmation", json={"follow_up": {"delays_minutes": delays}}
        ),
    ):
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["field"] == "follow_up.delays_minutes"
        assert words in error["message"]


def test_a_default_kind_takes_a_policy_and_shows_it(alice: Caller) -> None:
    policy = {"delays_minutes": [1440, 2880], "cc_bcc": False}
    response = alice.patch("/v1/kinds/booking.confirmation", json={"follow_up": policy})
    assert response.status_code == 200, response.text
    assert response.json()["follow_up"] == policy
    assert "follow_up" in response.json()["changed"]
    shown = alice.get("/v1/kinds/booking.confirmation").json()
    assert shown["follow_up"] == policy
    assert alice.get("/v1/kinds/booking.modified").json()["follow_up"] is None
    response = alice.patch("/v1/kinds/booking.confirmation", json={"follow_up": None})
    assert response.json()["follow_up"] is None


def test_a_date_reminder_cannot_have_follow_ups(alice: Caller) -> None:
    response = alice.patch(
        "/v1/kinds/booking.reminder_1h", json={"follow_up": {"delays_minutes": [60]}}
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "follow_up"
