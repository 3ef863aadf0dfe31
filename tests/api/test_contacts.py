"""PUT and GET /v1/contacts/{external_id}."""

from __future__ import annotations

from tests.api.conftest import Caller, member


def test_put_creates_a_contact_then_updates_it(alice: Caller) -> None:
    created = alice.put("/v1/contacts/m-17", json=member())
    assert created.status_code == 201
    assert created.json()["email"] == "camille@example.org"

    updated = alice.put("/v1/contacts/m-17", json=member(name="Camille Martin-Roux"))
    assert updated.status_code == 200
    assert alice.get("/v1/contacts/m-17").json()["name"] == "Camille Martin-Roux"


def test_contact_keeps_every_field_it_was_given(alice: Caller) -> None:
    body = member(
        other_emails=["c.martin@work.example"],
        phone="+33 6 12 34 56 78",
        staff_profiles=["secretary"],
        roles=["member", "instructor"],
    )
    alice.put("/v1/contacts/m-17", json=body)
    stored = alice.get("/v1/contacts/m-17").json()
    assert stored["external_id"] == "m-17"
    assert stored["other_emails"] == ["c.martin@work.example"]
    assert stored["phone"] == "+33 6 12 34 56 78"
    assert stored["locale"] == "fr"
    assert stored["timezone"] == "Europe/Paris"
    assert stored["roles"] == ["member", "instructor"]
    assert stored["staff_profiles"] == ["secretary"]


def test_a_changed_primary_address_is_kept_as_a_known_one(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member(email="old@example.org"))
    alice.put("/v1/contacts/m-17", json=member(email="new@example.org"))
    stored = alice.get("/v1/contacts/m-17").json()
    assert stored["email"] == "new@example.org"
    assert "old@example.org" in stored["other_emails"]


def test_unknown_contact_is_404_in_the_error_shape(alice: Caller) -> None:
    response = alice.get("/v1/contacts/nobody")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_tenant_cannot_read_or_see_another_tenants_contact(alice: Caller, bob: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    assert bob.get("/v1/contacts/m-17").status_code == 404
    # Bob writing the same external id makes his own contact, leaving Alice's alone.
    assert bob.put("/v1/contacts/m-17", json=member(name="Someone Else")).status_code == 201
    assert alice.get("/v1/contacts/m-17").json()["name"] == "Camille Martin"
