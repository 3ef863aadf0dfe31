"""The daily staff digest: one mail per staff member and venue day, listing the day's bookings."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from courrier.clock import ManualClock
from courrier.engine.digest import digest_day
from courrier.engine.dispatcher import Dispatcher
from tests.api.conftest import Caller, booking, member
from tests.support.smtp import SmtpServer

PARIS = "Europe/Paris"


@pytest.fixture
def clock() -> ManualClock:
    """Tuesday 10 March 2026, 09:00 in Paris."""
    return ManualClock(datetime(2026, 3, 10, 8, 0, tzinfo=UTC))


def book(caller: Caller, booking_id: str, received: datetime, clock: ManualClock) -> None:
    clock.set(received)
    event = booking(booking_id, occurred_at=received.isoformat())
    event["subject"]["start"] = (received + timedelta(days=3)).isoformat()
    event["subject"]["end"] = (received + timedelta(days=3, hours=2)).isoformat()
    assert caller.post("/v1/events", json=event).status_code == 202


def digests(caller: Caller) -> list[dict[str, Any]]:
    items = caller.get("/v1/messages", params={"kind": "booking.staff_digest"}).json()["items"]
    return sorted(items, key=lambda m: m["due_at"])


def body(caller: Caller, message: dict[str, Any]) -> str:
    return str(caller.get(f"/v1/messages/{message['id']}").json()["body_text"])


def test_the_days_bookings_go_out_in_one_mail_at_18_venue_time(
    alice: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    staff = member(name="Sam Rivera", email="sam@alpha.example", booking_copy="digest")
    alice.put("/v1/contacts/s-1", json=staff)
    each = member(name="Eve Martin", email="eve@alpha.example", booking_copy="each")
    alice.put("/v1/contacts/s-2", json=each)

    book(alice, "B-1", datetime(2026, 3, 10, 8, 0, tzinfo=UTC), clock)
    book(alice, "B-2", datetime(2026, 3, 10, 15, 30, tzinfo=UTC), clock)
    [digest] = digests(alice)
    assert digest["contact"] == "s-1"
    assert digest["address"] == "sam@alpha.example"
    assert digest["due_at"] == "2026-03-10T17:00:00Z"  # 18:00 in Paris
    text = body(alice, digest)
    assert "B-1" in text and "B-2" in text
    assert "Camille Martin" in text  # the booker, by name
    assert "http://courrier.test/preferences/" in text  # Sam's own page, as in every mail

    clock.set(datetime(2026, 3, 10, 17, 0, 1, tzinfo=UTC))
    dispatcher.run_once()
    sent = [r for r in smtp_server.received if "sam@alpha.example" in r.recipients]
    assert len(sent) == 1
    assert "B-2" in sent[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    # A booking received after the digest went out is in the next day's, alone.
    book(alice, "B-3", datetime(2026, 3, 10, 18, 30, tzinfo=UTC), clock)
    first, second = digests(alice)
    assert first["status"] == "sent"
    assert second["due_at"] == "2026-03-11T17:00:00Z"
    assert "B-3" in body(alice, second)
    assert "B-1" not in body(alice, second)


def test_a_staff_member_who_switched_the_digest_off_has_it_suppressed(
    alice: Caller, clock: ManualClock
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    alice.put(
        "/v1/contacts/s-1",
        json=member(name="Sam Rivera", email="sam@alpha.example", booking_copy="digest"),
    )
    off = {"preferences": [{"kind": "booking.staff_digest", "enabled": False}]}
    assert alice.put("/v1/contacts/s-1/preferences", json=off).status_code == 200
    book(alice, "B-1", datetime(2026, 3, 10, 8, 0, tzinfo=UTC), clock)
    book(alice, "B-2", datetime(2026, 3, 10, 9, 0, tzinfo=UTC), clock)
    [digest] = digests(alice)
    reason = "switched off by staff (booking.staff_digest, every channel)"
    assert digest["status"] == "suppressed"
    assert digest["status_reason"] == reason
    [planned] = alice.get(f"/v1/messages/{digest['id']}").json()["timeline"]
    assert (planned["entry"], planned["status"], planned["reason"]) == (
        "planned",
        "suppressed",
        reason,
    )


def test_a_new_digest_hour_moves_the_pending_digest_without_a_second_one(
    alice: Caller, clock: ManualClock
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    staff = member(name="Sam Rivera", email="sam@alpha.example", booking_copy="digest")
    alice.put("/v1/contacts/s-1", json=staff)
    book(alice, "B-1", datetime(2026, 3, 10, 8, 0, tzinfo=UTC), clock)
    later = {"timing": {"mode": "daily", "at": "20:00"}}
    assert (
        alice.client.patch(
            "/v1/kinds/booking.staff_digest", json=later, headers=alice.headers
        ).status_code
        == 200
    )
    book(alice, "B-2", datetime(2026, 3, 10, 9, 0, tzinfo=UTC), clock)
    [digest] = digests(alice)
    assert digest["due_at"] == "2026-03-10T19:00:00Z"  # 20:00 in Paris
    assert "B-1" in body(alice, digest) and "B-2" in body(alice, digest)


def test_a_digest_on_the_recipients_clock_is_due_at_their_18_00(
    alice: Caller, clock: ManualClock
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    away = member(
        name="Sam Rivera",
        email="sam@alpha.example",
        booking_copy="digest",
        timezone="America/New_York",
    )
    alice.put("/v1/contacts/s-1", json=away)
    theirs = {"timing": {"mode": "daily", "at": "18:00", "zone": "recipient"}}
    response = alice.client.patch(
        "/v1/kinds/booking.staff_digest", json=theirs, headers=alice.headers
    )
    assert response.status_code == 200
    book(alice, "B-1", datetime(2026, 3, 10, 8, 0, tzinfo=UTC), clock)
    [digest] = digests(alice)
    assert digest["due_at"] == "2026-03-10T22:00:00Z"  # 18:00 in New York (EDT since 8 March)


def test_the_digest_hour_follows_the_venue_clock_across_dst() -> None:
    at = time(18, 0)
    before = digest_day(datetime(2026, 3, 28, 12, 0, tzinfo=UTC), at, PARIS)
    after = digest_day(datetime(2026, 3, 29, 12, 0, tzinfo=UTC), at, PARIS)
    assert before.due == datetime(2026, 3, 28, 17, 0, tzinfo=UTC)  # UTC+1
    assert after.due == datetime(2026, 3, 29, 16, 0, tzinfo=UTC)  # UTC+2 since 02:00
    assert after.opens == before.due  # no gap and no overlap between two days
    assert after.day == "2026-03-29"
    late = digest_day(datetime(2026, 3, 28, 17, 30, tzinfo=UTC), at, PARIS)
    assert late.day == "2026-03-29"  # after 18:00: tomorrow's digest
