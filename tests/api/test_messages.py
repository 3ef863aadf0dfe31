"""GET /v1/messages (filters, paging) and GET /v1/messages/{id} (content and timeline)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from courrier.clock import ManualClock
from tests.api.conftest import Caller, booking, member


def plan_bookings(caller: Caller, count: int, clock: ManualClock | None = None) -> list[int]:
    """``count`` bookings by two members; returns the planned message ids, oldest first."""
    caller.put("/v1/contacts/m-1", json=member(name="Camille", email="camille@example.org"))
    caller.put("/v1/contacts/m-2", json=member(name="Louis", email="louis@example.org"))
    ids = []
    for n in range(count):
        if clock is not None:
            clock.advance(timedelta(minutes=1))
        body = booking(f"B-{n}", booker=f"m-{n % 2 + 1}")
        # paid, and begun before the clock's now: the confirmation is its only message
        body["subject"].update(
            paid=True, start="2026-02-20T10:00:00+01:00", end="2026-02-20T12:00:00+01:00"
        )
        response = caller.post("/v1/events", json=body)
        assert response.status_code == 202, response.text
        ids += [m["id"] for m in response.json()["messages"]]
    return ids


def ids_of(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_history_lists_newest_first(alice: Caller) -> None:
    planned = plan_bookings(alice, 3)
    assert ids_of(alice.get("/v1/messages")) == planned[::-1]


def test_history_filters_by_subject(alice: Caller) -> None:
    planned = plan_bookings(alice, 3)
    assert ids_of(alice.get("/v1/messages?subject_type=booking&subject_id=B-1")) == [planned[1]]


def test_history_filters_by_contact_status_kind_and_channel(alice: Caller) -> None:
    planned = plan_bookings(alice, 4)
    assert ids_of(alice.get("/v1/messages?contact=m-2")) == [planned[3], planned[1]]
    kind = alice.get(f"/v1/messages/{planned[0]}").json()["kind"]
    assert len(ids_of(alice.get(f"/v1/messages?kind={kind}&channel=email&status=due"))) == 4
    assert ids_of(alice.get("/v1/messages?status=sent")) == []
    assert ids_of(alice.get("/v1/messages?channel=sms")) == []


def test_history_filters_by_creation_time(alice: Caller, clock: ManualClock) -> None:
    start = clock()
    planned = plan_bookings(alice, 3, clock)  # created at start+1, +2, +3 minutes
    since = (start + timedelta(minutes=2)).isoformat()
    until = (start + timedelta(minutes=3)).isoformat()
    assert ids_of(alice.get("/v1/messages", params={"since": since, "until": until})) == [
        planned[1]
    ]


def test_history_searches_text_in_subject_line_and_address(alice: Caller) -> None:
    planned = plan_bookings(alice, 2)
    assert ids_of(alice.get("/v1/messages?q=LOUIS@")) == [planned[1]]
    subject_line = alice.get(f"/v1/messages/{planned[0]}").json()["subject_line"]
    assert len(ids_of(alice.get("/v1/messages", params={"q": subject_line[:8]}))) == 2
    assert ids_of(alice.get("/v1/messages?q=100%25_off")) == []


def test_paging_with_the_cursor_visits_every_message_once(alice: Caller) -> None:
    planned = plan_bookings(alice, 5)
    seen: list[int] = []
    url = "/v1/messages?limit=2"
    pages = 0
    while url:
        page = alice.get(url).json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        url = f"/v1/messages?limit=2&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    assert seen == planned[::-1]
    assert pages == 3


def test_one_message_shows_its_content_and_timeline(alice: Caller) -> None:
    [message_id] = plan_bookings(alice, 1)
    message = alice.get(f"/v1/messages/{message_id}").json()
    assert message["subject"] == {"type": "booking", "id": "B-0"}
    assert message["contact"] == "m-1"
    assert message["from_addr"] == "noreply@alpha.example"
    assert message["reply_to"] == "desk@alpha.example"
    assert message["subject_line"] and message["body_text"] and message["body_html"]
    assert any(a["filename"].endswith(".ics") for a in message["attachments"])
    assert [step["entry"] for step in message["timeline"]] == ["planned"]


def test_another_tenants_messages_are_invisible_and_404(alice: Caller, bob: Caller) -> None:
    [message_id] = plan_bookings(alice, 1)
    assert ids_of(bob.get("/v1/messages")) == []
    response = bob.get(f"/v1/messages/{message_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
