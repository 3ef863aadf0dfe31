"""POST /v1/events: 202 with what was planned; the same idempotency key answers the same."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Caller, booking, member


def test_an_event_is_accepted_with_its_planned_confirmation(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    response = alice.post("/v1/events", json=booking())
    assert response.status_code == 202, response.text
    body = response.json()
    assert isinstance(body["event_id"], int)
    [planned] = [m for m in body["messages"] if m["kind"] == "booking.confirmation"]
    assert planned["channel"] == "email"
    assert planned["address"] == "camille@example.org"
    assert planned["contact"] == "m-17"
    assert planned["kind"].startswith("booking")


def test_the_same_idempotency_key_answers_the_same_and_plans_nothing_more(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    first = alice.post("/v1/events", json=booking())
    again = alice.post("/v1/events", json=booking())
    assert again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len(alice.get("/v1/messages").json()["items"]) == len(first.json()["messages"])


def test_idempotency_keys_are_per_tenant(alice: Caller, bob: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    bob.put("/v1/contacts/m-17", json=member(email="other@example.org"))
    mine = alice.post("/v1/events", json=booking()).json()
    theirs = bob.post("/v1/events", json=booking()).json()
    assert mine["event_id"] != theirs["event_id"]
    assert theirs["messages"][0]["address"] == "other@example.org"


@pytest.mark.parametrize(
    "header", [None, "Bearer ck_not-a-real-key-at-all", "Basic dXNlcjpwYXNz", "Bearer"]
)
@pytest.mark.parametrize("batch", [False, True])
def test_an_event_with_a_missing_or_unknown_key_is_401_and_stores_nothing(
    client: TestClient, alice: Caller, header: str | None, batch: bool
) -> None:
    """The event routes look the key up in their own thread: still before anything is stored."""
    alice.put("/v1/contacts/m-17", json=member())
    headers = {"Authorization": header} if header is not None else {}
    url, body = (
        ("/v1/events/batch", {"events": [booking()]}) if batch else ("/v1/events", booking())
    )
    response = client.post(url, json=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"
    assert alice.get("/v1/messages").json()["items"] == []
    accepted = alice.post("/v1/events", json=booking())  # its idempotency key is still free
    assert accepted.status_code == 202
    assert "idempotent-replayed" not in accepted.headers
