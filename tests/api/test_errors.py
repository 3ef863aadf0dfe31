"""One error shape everywhere, and a 422 naming the field for each kind of bad input."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from courrier.store import db
from tests.api.conftest import Caller, booking, member


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "field"}
    return error


def test_no_api_key_is_401_asking_for_bearer(client: TestClient) -> None:
    response = client.get("/v1/messages")
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header", ["Bearer ck_not-a-real-key-at-all", "Basic dXNlcjpwYXNz", "Bearer", "ck_x"]
)
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/v1/messages"),
        ("GET", "/v1/messages/1"),
        ("GET", "/v1/contacts/m-17"),
        ("PUT", "/v1/contacts/m-17"),
        ("POST", "/v1/messages"),
        ("GET", "/v1/kinds"),
    ],
)
def test_a_bad_or_unknown_api_key_is_401(
    client: TestClient, alice: Caller, header: str, method: str, url: str
) -> None:
    """Whether the route looks the key up in a dependency or first thing in its own thread."""
    alice.put("/v1/contacts/m-17", json=member())
    body = {
        "PUT": member(name="Someone Else"),
        "POST": {
            "to": {"contact": "m-17"},
            "subject": "Hello",
            "text": "Hello",
            "idempotency_key": "one-off-1",
        },
    }.get(method)
    response = client.request(method, url, json=body, headers={"Authorization": header})
    assert_error(response, 401, "unauthorized")
    assert alice.get("/v1/contacts/m-17").json()["name"] == "Camille Martin"
    assert alice.get("/v1/messages").json()["items"] == []


def test_unknown_route_is_404_in_the_error_shape(alice: Caller) -> None:
    assert_error(alice.get("/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_405_in_the_error_shape(alice: Caller) -> None:
    assert_error(
        alice.client.delete("/v1/events", headers=alice.headers), 405, "method_not_allowed"
    )


def test_malformed_json_is_422_on_the_body(alice: Caller) -> None:
    response = alice.post(
        "/v1/events",
        content=b'{"type": "booking.created",',
        headers={"content-type": "application/json"},
    )
    assert assert_error(response, 422, "invalid")["field"] == "body"


def test_nan_in_free_form_state_is_422_naming_it(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    body = json.dumps(booking()).replace('"paid": false', '"paid": false, "price": NaN')
    response = alice.post("/v1/events", content=body, headers={"content-type": "application/json"})
    assert assert_error(response, 422, "invalid")["field"] == "subject.price"


def test_json_nested_too_deeply_is_422_on_the_body(alice: Caller) -> None:
    body = b'{"subject": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = alice.post("/v1/events", content=body, headers={"content-type": "application/json"})
    assert assert_error(response, 422, "invalid")["field"] == "body"


def test_a_lone_surrogate_in_free_form_state_is_422_naming_it(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    body = json.dumps(booking()).replace('"paid": false', '"paid": false, "note": "\\udc00"')
    response = alice.post("/v1/events", content=body, headers={"content-type": "application/json"})
    assert assert_error(response, 422, "invalid")["field"] == "subject.note"


def test_oversized_body_is_413(alice: Caller) -> None:
    body = member(name="x" * 100) | {"roles": ["r" * 150] * 8000}
    assert_error(alice.put("/v1/contacts/m-1", json=body), 413, "body_too_large")


def test_oversized_streamed_body_without_length_is_413(alice: Caller) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(1100):
            yield b"x" * 1000
        yield b'"}'

    response = alice.put(
        "/v1/contacts/m-1", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "body_too_large")


CONTACT_CASES = [
    pytest.param({"name": 123}, "name", id="wrong type"),
    pytest.param({"email": "not-an-address"}, "email", id="invalid email"),
    pytest.param(
        {"other_emails": ["a@example.org", "b@@example.org"]}, "other_emails.1", id="invalid item"
    ),
    pytest.param({"timezone": "Mars/Olympus_Mons"}, "timezone", id="unknown zone"),
    pytest.param({"name": "Camille\x00Martin"}, "name", id="NUL byte"),
    pytest.param({"nickname": "Cam"}, "nickname", id="unknown field"),
    pytest.param({"phone": "call me maybe"}, "phone", id="bad phone"),
    pytest.param({"locale": "french please"}, "locale", id="bad locale"),
    pytest.param({"roles": "member"}, "roles", id="string instead of list"),
    pytest.param({"name": "x" * 201}, "name", id="too long"),
]


@pytest.mark.parametrize(("change", "field"), CONTACT_CASES)
def test_bad_contact_is_422_naming_the_field(
    alice: Caller, change: dict[str, Any], field: str
) -> None:
    error = assert_error(alice.put("/v1/contacts/m-1", json=member() | change), 422, "invalid")
    assert error["field"] == field


def _subject(**changes: Any) -> dict[str, Any]:
    subject: dict[str, Any] = booking()["subject"]
    return subject | changes


EVENT_CASES = [
    pytest.param({"occurred_at": "yesterday"}, "occurred_at", id="bad date"),
    pytest.param({"occurred_at": "2026-03-01T09:00:00"}, "occurred_at", id="naive date"),
    pytest.param(
        {"occurred_at": "0001-01-01T00:00:00+05:00"}, "occurred_at", id="date out of range"
    ),
    pytest.param({"type": "Booking Created"}, "type", id="bad event type"),
    pytest.param({"idempotency_key": ""}, "idempotency_key", id="empty key"),
    pytest.param({"subject": None}, "subject", id="missing subject"),
    pytest.param({"subject": _subject(id=10**30)}, "subject.id", id="huge int"),
    pytest.param(
        {"subject": _subject(end="2026-03-05T09:00:00+01:00")}, "subject.end", id="end before start"
    ),
    pytest.param(
        {"subject": _subject(start="next tuesday")}, "subject.start", id="bad subject date"
    ),
    pytest.param(
        {"subject": _subject(timezone="Europe/Atlantis")},
        "subject.timezone",
        id="unknown subject zone",
    ),
    pytest.param(
        {"subject": _subject(resource={"name": "DR\x00400"})},
        "subject.resource.name",
        id="NUL in nested state",
    ),
    pytest.param({"subject": _subject(paid="yes")}, "subject.paid", id="wrong type in subject"),
]


@pytest.mark.parametrize(("change", "field"), EVENT_CASES)
def test_bad_event_is_422_naming_the_field(
    alice: Caller, change: dict[str, Any], field: str
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    error = assert_error(alice.post("/v1/events", json=booking() | change), 422, "invalid")
    assert error["field"] == field


QUERY_CASES = [
    pytest.param("/v1/messages?limit=0", "limit", id="limit too small"),
    pytest.param("/v1/messages?limit=501", "limit", id="limit too large"),
    pytest.param(f"/v1/messages?limit={10**40}", "limit", id="huge int"),
    pytest.param("/v1/messages?status=lost", "status", id="unknown status"),
    pytest.param("/v1/messages?since=last-week", "since", id="bad since"),
    pytest.param("/v1/messages?cursor=%%%not-a-cursor", "cursor", id="bad cursor"),
    pytest.param(
        "/v1/messages?cursor=djE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "cursor", id="cursor out of range"
    ),
    pytest.param(f"/v1/messages/{10**30}", "message_id", id="huge id"),
    pytest.param("/v1/messages/abc", "message_id", id="id not a number"),
    pytest.param("/v1/messages?q=a%00b", "q", id="NUL in query"),
]


@pytest.mark.parametrize(("url", "field"), QUERY_CASES)
def test_bad_query_is_422_naming_the_field(alice: Caller, url: str, field: str) -> None:
    assert assert_error(alice.get(url), 422, "invalid")["field"] == field


@pytest.mark.sqlite_only
def test_a_database_locked_past_the_wait_is_503_and_stores_nothing(
    alice: Caller, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    monkeypatch.setattr(db, "WRITE_LOCK_TIMEOUT", 0.2)
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, for longer than the wait
    try:
        response = alice.post("/v1/events", json=booking())
    finally:
        holder.rollback()
        holder.close()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "unavailable"
    again = alice.post("/v1/events", json=booking())  # nothing was stored: accepted now, anew
    assert again.status_code == 202 and "idempotent-replayed" not in again.headers
