"""POST /v1/events/batch: many events in one transaction, each answered as POST /v1/events would."""

from __future__ import annotations

from typing import Any

import pytest

from courrier.api.models import MAX_EVENTS_BATCH
from tests.api.conftest import Caller, booking, member


def bookings(*ids: str, **changes: Any) -> list[dict[str, Any]]:
    return [booking(booking_id, **changes) for booking_id in ids]


def message_count(caller: Caller) -> int:
    return len(caller.get("/v1/messages", params={"limit": 200}).json()["items"])


def test_a_batch_is_answered_event_by_event_in_the_order_posted(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    events = bookings("B-1", "B-2", "B-3")
    response = alice.post("/v1/events/batch", json={"events": events})
    assert response.status_code == 202, response.text
    results = response.json()["results"]
    assert len(results) == 3
    assert len({r["event_id"] for r in results}) == 3
    assert not any(r["replayed"] for r in results)
    for result in results:
        [confirmation] = [m for m in result["messages"] if m["kind"] == "booking.confirmation"]
        assert confirmation["address"] == "camille@example.org"
    # each answer is the one POST /v1/events gives again for its key
    again = alice.post("/v1/events", json=events[1])
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == {k: v for k, v in results[1].items() if k != "replayed"}


def test_keys_seen_before_or_twice_in_the_batch_are_replayed_and_plan_nothing(
    alice: Caller,
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    first = alice.post("/v1/events", json=booking("B-1")).json()
    planned = message_count(alice)
    response = alice.post("/v1/events/batch", json={"events": bookings("B-1", "B-2", "B-2")})
    assert response.status_code == 202, response.text
    old, new, repeat = response.json()["results"]
    assert old["replayed"] and old["event_id"] == first["event_id"]
    assert not new["replayed"]
    assert repeat["replayed"] and repeat["event_id"] == new["event_id"]
    assert message_count(alice) == planned + len(new["messages"])


def test_one_bad_event_refuses_the_whole_batch_naming_its_position(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    events = bookings("B-1", "B-2", "B-3")
    events[1]["subject"]["end"] = "2026-03-05T09:00:00+01:00"  # before its start
    response = alice.post("/v1/events/batch", json={"events": events})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "events.1.subject.end"
    assert message_count(alice) == 0
    # nothing was stored: the good events are new when posted again
    assert alice.post("/v1/events", json=events[0]).headers.get("idempotent-replayed") is None


def test_an_unknown_booker_refuses_the_batch_naming_the_event(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    events = [*bookings("B-1", "B-2"), booking("B-3", booker="m-99")]
    response = alice.post("/v1/events/batch", json={"events": events})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "events.2.subject.booker"
    assert "m-99" in error["message"] and "event 2:" not in error["message"]
    assert message_count(alice) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": []}, "events"),
        ({"events": [booking(f"B-{i}") for i in range(MAX_EVENTS_BATCH + 1)]}, "events"),
        ({"events": [booking("B-1", type="booking")]}, "events.0.type"),
        ({"events": [{"type": "booking.created"}]}, "events.0.idempotency_key"),
        ({}, "events"),
    ],
)
def test_a_malformed_batch_is_422_naming_the_field(
    alice: Caller, body: dict[str, Any], field: str
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    response = alice.post("/v1/events/batch", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_a_batch_never_reaches_another_tenants_contacts(alice: Caller, bob: Caller) -> None:
    bob.put("/v1/contacts/m-17", json=member(email="bob.member@example.org"))
    response = alice.post("/v1/events/batch", json={"events": bookings("B-1")})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "events.0.subject.booker"
    assert message_count(bob) == 0
