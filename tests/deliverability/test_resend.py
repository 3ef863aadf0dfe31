"""Staff send again what a blocked address stopped: reset the address, retry the message.

A member's mailbox refuses two confirmations with 550 (threshold 1: blocked),
so a third is suppressed. Staff reset the address and retry through the API;
a real dispatcher sends the same mail (same Message-ID) to the aiosmtpd
recorder. Retried reminders still go through the send-time checks, and a
reminder staff cancelled is or is not planned again by later booking changes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from courrier.store.schema import tenants
from tests.api.conftest import Caller, member
from tests.deliverability.conftest import a_booking
from tests.scenarios.flow import post, send_due
from tests.support.smtp import SmtpServer

ADDRESS = "camille@example.org"
REFUSAL = "550 5.1.1 <camille@example.org>: Recipient address rejected: User unknown"
STAFF = {"reason": "member fixed their mailbox (phone call)", "by": "Claire (office)"}


@pytest.fixture
def member_alice(alice: Caller, engine: Engine) -> Caller:
    """Alpha with one member, m-1, and an address blocked after its second refusal."""
    response = alice.put("/v1/contacts/m-1", json=member(email=ADDRESS))
    assert response.status_code in (200, 201), response.text
    with engine.begin() as conn:
        conn.execute(
            update(tenants).where(tenants.c.id == alice.tenant.id).values(block_threshold=1)
        )
    return alice


def confirmation(caller: Caller, clock: ManualClock, booking_id: str, **changes: Any) -> int:
    """Post a booking of m-1; the id of its confirmation."""
    planned = post(caller, clock, "booking.created", a_booking(booking_id, **changes))
    [message] = [m for m in planned if m["kind"] == "booking.confirmation"]
    return int(message["id"])


def detail(caller: Caller, message_id: int) -> dict[str, Any]:
    response = caller.get(f"/v1/messages/{message_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture
def blocked(
    member_alice: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> list[int]:
    """Two confirmations refused (failed; the address blocked), a third suppressed; their ids."""
    smtp_server.script(REFUSAL, REFUSAL)
    ids = []
    for booking_id in ("B-1", "B-2", "B-3"):
        ids.append(confirmation(member_alice, clock, booking_id))
        send_due(dispatcher)
    assert [detail(member_alice, i)["status"] for i in ids] == ["failed", "failed", "suppressed"]
    assert smtp_server.received == []
    return ids


def reset(caller: Caller) -> None:
    answer = caller.post(f"/v1/addresses/{ADDRESS}/reset", json=STAFF)
    assert answer.status_code == 200, answer.text


def test_a_suppressed_confirmation_retried_after_the_reset_arrives_with_its_message_id(
    member_alice: Caller,
    blocked: list[int],
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
) -> None:
    suppressed = blocked[2]
    before = detail(member_alice, suppressed)
    refused = member_alice.post(f"/v1/messages/{suppressed}/retry", json=STAFF)
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == (
        f"the address {ADDRESS} is blocked; reset the address first: "
        f"POST /v1/addresses/{ADDRESS}/reset"
    )
    reset(member_alice)
    answer = member_alice.post(f"/v1/messages/{suppressed}/retry", json=STAFF)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "due"
    send_due(dispatcher)

    [mail] = smtp_server.received
    assert mail.message["Message-ID"] == before["message_id_header"]
    assert mail.recipients == [ADDRESS]
    after = detail(member_alice, suppressed)
    assert after["status"] == "sent"
    assert after["message_id_header"] == before["message_id_header"]
    entries = [entry["entry"] for entry in after["timeline"]]
    assert entries.index("requeued") < entries.index("sent")
    [requeued] = [entry for entry in after["timeline"] if entry["entry"] == "requeued"]
    assert requeued["reason"] == STAFF["reason"]
    assert requeued["data"]["by"].startswith("Claire (office) (key ")
    assert requeued["data"]["was"] == "suppressed"


def test_a_failed_confirmation_is_retried_from_attempt_zero_and_sent(
    member_alice: Caller,
    blocked: list[int],
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
) -> None:
    failed = blocked[0]
    reset(member_alice)
    assert member_alice.post(f"/v1/messages/{failed}/retry", json=STAFF).status_code == 200
    send_due(dispatcher)
    [mail] = smtp_server.received
    after = detail(member_alice, failed)
    assert mail.message["Message-ID"] == after["message_id_header"]
    assert (after["status"], after["attempts"]) == ("sent", 1)


def a_suppressed_reminder(
    caller: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> dict[str, Any]:
    """B-9's 1 h reminder, suppressed at its time because the address was blocked meanwhile."""
    planned = post(caller, clock, "booking.created", a_booking("B-9"))
    send_due(dispatcher)  # its confirmation goes
    smtp_server.script(REFUSAL, REFUSAL)
    for booking_id in ("B-1", "B-2"):
        confirmation(caller, clock, booking_id)
        send_due(dispatcher)
    [reminder] = [m for m in planned if m["kind"] == "booking.reminder_1h"]
    clock.set(datetime.fromisoformat(reminder["due_at"]))
    send_due(dispatcher)
    found = detail(caller, int(reminder["id"]))
    assert found["status"] == "suppressed", found
    return found


def test_a_retried_reminder_of_a_booking_cancelled_meanwhile_is_withdrawn_at_send_time(
    member_alice: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
) -> None:
    reminder = a_suppressed_reminder(member_alice, clock, dispatcher, smtp_server)
    post(member_alice, clock, "booking.cancelled", a_booking("B-9", status="cancelled"))
    send_due(dispatcher)
    reset(member_alice)
    sent_before = len(smtp_server.received)
    answer = member_alice.post(f"/v1/messages/{reminder['id']}/retry", json=STAFF)
    assert answer.status_code == 200, answer.text
    send_due(dispatcher)
    after = detail(member_alice, reminder["id"])
    assert after["status"] == "cancelled"
    assert after["timeline"][-1]["entry"] == "checked"
    assert "at send time" in after["timeline"][-1]["reason"]
    assert reminder["message_id_header"] not in [
        m.message["Message-ID"] for m in smtp_server.received[sent_before:]
    ]


def test_a_reminder_whose_booking_has_started_is_not_retried(
    member_alice: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
) -> None:
    """The send-time check sends a reminder merely overdue, so the retry itself refuses it."""
    reminder = a_suppressed_reminder(member_alice, clock, dispatcher, smtp_server)
    clock.advance(timedelta(hours=2))  # the booking started an hour ago
    reset(member_alice)
    answer = member_alice.post(f"/v1/messages/{reminder['id']}/retry", json=STAFF)
    assert answer.status_code == 409
    assert answer.json()["error"] == {
        "code": "conflict",
        "message": f"message {reminder['id']} is a booking.reminder_1h for start "
        "2026-03-05T10:00:00+01:00, which has passed",
    }
    assert detail(member_alice, reminder["id"])["status"] == "suppressed"


# --- a cancelled reminder and later changes of its booking -------------------------------------


def cancelled_reminder(caller: Caller, clock: ManualClock) -> dict[str, Any]:
    """B-9's 24 h reminder, cancelled by staff before its time."""
    planned = post(caller, clock, "booking.created", a_booking("B-9"))
    [reminder] = [m for m in planned if m["kind"] == "booking.reminder_24h"]
    answer = caller.post(f"/v1/messages/{reminder['id']}/cancel", json=STAFF)
    assert answer.status_code == 200, answer.text
    clock.advance(timedelta(minutes=5))
    return reminder


def reminders_24h(caller: Caller) -> list[tuple[str, str]]:
    """(status, due_at) of every 24 h reminder of B-9, oldest first."""
    items = caller.get("/v1/messages", params={"subject_id": "B-9", "limit": 100}).json()["items"]
    return sorted(
        ((m["status"], m["due_at"]) for m in items if m["kind"] == "booking.reminder_24h"),
        key=lambda pair: pair[1],
    )


def test_a_booking_moved_to_another_day_gets_that_days_reminder_after_a_staff_cancel(
    member_alice: Caller, clock: ManualClock
) -> None:
    """Staff withdrew the reminder of one date; a new date is a new reminder, as for any move."""
    cancelled_reminder(member_alice, clock)
    moved = a_booking("B-9", start="2026-03-06T10:00:00+01:00", end="2026-03-06T12:00:00+01:00")
    post(member_alice, clock, "booking.modified", moved)
    assert reminders_24h(member_alice) == [
        ("cancelled", "2026-03-04T09:00:00Z"),
        ("planned", "2026-03-05T09:00:00Z"),
    ]


def test_a_change_keeping_the_date_does_not_bring_back_a_reminder_staff_cancelled(
    member_alice: Caller, clock: ManualClock
) -> None:
    cancelled_reminder(member_alice, clock)
    other_plane = a_booking("B-9", resource={"id": "F-GKQB", "name": "F-GKQB (DR400)"})
    post(member_alice, clock, "booking.modified", other_plane)
    assert reminders_24h(member_alice) == [("cancelled", "2026-03-04T09:00:00Z")]
