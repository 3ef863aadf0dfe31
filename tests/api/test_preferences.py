"""GET and PUT /v1/contacts/{id}/preferences, and the staff copy mode of a contact."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from courrier.store.kinds import save_tenant_kind
from tests.api.conftest import Caller, member

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_staff_switch_a_kind_off_and_read_it_back(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    assert alice.get("/v1/contacts/m-17/preferences").json() == {
        "contact": "m-17",
        "preferences": [],
        "switched_off": [],
    }
    rules = [
        {"kind": "booking.confirmation", "channel": "email", "enabled": False},
        {"kind": "*", "enabled": True},
    ]
    response = alice.put("/v1/contacts/m-17/preferences", json={"preferences": rules})
    assert response.status_code == 200
    stored = alice.get("/v1/contacts/m-17/preferences").json()["preferences"]
    assert [(r["kind"], r["channel"], r["enabled"], r["set_by"]) for r in stored] == [
        ("*", "*", True, "staff"),
        ("booking.confirmation", "email", False, "staff"),
    ]


def test_put_replaces_every_rule(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    off = {"kind": "booking.confirmation", "channel": "email", "enabled": False}
    alice.put("/v1/contacts/m-17/preferences", json={"preferences": [off]})
    alice.put("/v1/contacts/m-17/preferences", json={"preferences": []})
    assert alice.get("/v1/contacts/m-17/preferences").json()["preferences"] == []


def test_an_unknown_kind_or_channel_is_a_422_naming_the_rule(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    bad_kind = [{"kind": "*", "enabled": False}, {"kind": "parcel.arrived", "enabled": False}]
    response = alice.put("/v1/contacts/m-17/preferences", json={"preferences": bad_kind})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "preferences.1.kind"
    assert "parcel.arrived" in response.json()["error"]["message"]
    bad_channel = [{"kind": "*", "channel": "pigeon", "enabled": False}]
    response = alice.put("/v1/contacts/m-17/preferences", json={"preferences": bad_channel})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "preferences.0.channel"


def test_the_same_rule_twice_is_refused(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    twice = [{"kind": "*", "enabled": False}, {"kind": "*", "channel": "*", "enabled": True}]
    response = alice.put("/v1/contacts/m-17/preferences", json={"preferences": twice})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "preferences.1"


def test_preferences_of_an_unknown_or_foreign_contact_are_404(alice: Caller, bob: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    assert alice.get("/v1/contacts/nobody/preferences").status_code == 404
    assert bob.get("/v1/contacts/m-17/preferences").status_code == 404
    body = {"preferences": [{"kind": "*", "enabled": False}]}
    assert bob.put("/v1/contacts/m-17/preferences", json=body).status_code == 404


def test_booking_copy_is_set_kept_when_left_out_and_checked(alice: Caller) -> None:
    assert alice.put("/v1/contacts/s-1", json=member()).json()["booking_copy"] == "off"
    alice.put("/v1/contacts/s-1", json=member(booking_copy="digest"))
    assert alice.get("/v1/contacts/s-1").json()["booking_copy"] == "digest"
    alice.put("/v1/contacts/s-1", json=member(name="Sam"))
    assert alice.get("/v1/contacts/s-1").json()["booking_copy"] == "digest"
    response = alice.put("/v1/contacts/s-1", json=member(booking_copy="weekly"))
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "booking_copy"


def test_a_kind_always_sent_cannot_be_switched_off(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    rules = [{"kind": "member.password_reset", "channel": "email", "enabled": False}]
    response = alice.put("/v1/contacts/m-17/preferences", json={"preferences": rules})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "preferences.0.enabled"
    assert "member.password_reset cannot be switched off" in response.json()["error"]["message"]
    # Saying it is on is harmless.
    rules[0]["enabled"] = True
    assert (
        alice.put("/v1/contacts/m-17/preferences", json={"preferences": rules}).status_code == 200
    )


def test_a_kind_the_tenant_switched_off_can_still_be_given_a_rule(
    alice: Caller, engine: Engine
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    with engine.begin() as conn:
        save_tenant_kind(
            conn,
            alice.tenant.id,
            "booking.reminder_1h",
            enabled=False,
            custom=False,
            definition={},
            templates={},
            now=NOW,
        )
    rules = [{"kind": "booking.reminder_1h", "enabled": False}]
    assert (
        alice.put("/v1/contacts/m-17/preferences", json={"preferences": rules}).status_code == 200
    )


def test_the_answer_says_which_kinds_the_rules_switch_off_and_why(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    rules = [
        {"kind": "*", "enabled": False},
        {"kind": "booking.confirmation", "enabled": True},
    ]
    body = alice.put("/v1/contacts/m-17/preferences", json={"preferences": rules}).json()
    off = {(s["kind"], s["channel"]): s["reason"] for s in body["switched_off"]}
    assert ("booking.confirmation", "email") not in off
    assert ("member.password_reset", "email") not in off  # always sent
    assert (
        off[("booking.reminder_1h", "email")] == "switched off by staff (every kind, every channel)"
    )
