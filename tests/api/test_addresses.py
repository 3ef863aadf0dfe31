"""``/v1/addresses``: staff see why an address is blocked, and reset it with a reason."""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.store import health
from courrier.store.schema import address_audit, api_keys, tenants
from courrier.store.tenants import create_api_key
from tests.api.conftest import Caller
from tests.support.factories import insert_message, message_row

ADDRESS = "gone@example.test"


def block(engine: Engine, caller: Caller, clock: ManualClock, address: str = ADDRESS) -> int:
    """Two refusals of a message to ``address`` with a threshold of 1: blocked; the message id."""
    tenant_id = caller.tenant.id
    with engine.begin() as conn:
        conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(block_threshold=1))
        row = message_row(tenant_id, 1, now=clock(), address=address, status="failed")
        message_id = insert_message(conn, row)
        errors = [
            health.AddressError(tenant_id, address, "smtp", 550, "5.1.1", text, message_id)
            for text in ("5.1.1 User unknown", "5.1.1 User unknown (again)")
        ]
        health.record_errors(conn, errors, clock())
    return message_id


def test_a_blocked_address_is_listed_and_shows_its_errors_messages_and_audit(
    engine: Engine, alice: Caller, clock: ManualClock
) -> None:
    message_id = block(engine, alice, clock)
    listed = alice.get("/v1/addresses", params={"blocked": "true"})
    assert listed.status_code == 200
    assert [(a["address"], a["error_count"], a["blocked"]) for a in listed.json()["items"]] == [
        (ADDRESS, 2, True)
    ]
    detail = alice.get(f"/v1/addresses/{quote('Gone@Example.test')}")
    assert detail.status_code == 200
    body = detail.json()
    assert body["blocked"] is True and body["blocked_at"] is not None
    assert body["last_error"] == "550 5.1.1 User unknown (again)"
    assert [(e["code"], e["status"], e["message_id"]) for e in body["errors"]] == [
        (550, "5.1.1", message_id)
    ] * 2
    assert body["messages"] == [
        {"id": message_id, "kind": "booking.confirmation", "status": "failed", "reason": None}
    ]
    assert [(a["action"], a["actor"], a["error_count"]) for a in body["audit"]] == [
        ("blocked", "courrier", 2)
    ]


def test_a_reset_unblocks_with_the_staff_name_and_the_key_in_the_audit(
    engine: Engine, alice: Caller, clock: ManualClock
) -> None:
    block(engine, alice, clock)
    with engine.connect() as conn:
        prefix = conn.execute(
            select(api_keys.c.prefix).where(api_keys.c.tenant_id == alice.tenant.id)
        ).scalar_one()
    answer = alice.post(
        f"/v1/addresses/{ADDRESS}/reset",
        json={"reason": "member fixed their mailbox", "by": "Claire (office)"},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["error_count"], body["blocked"], body["blocked_at"]) == (0, False, None)
    assert body["audit"][0] == {
        "at": body["audit"][0]["at"],
        "action": "reset",
        "actor": f"Claire (office) (key {prefix})",
        "reason": "member fixed their mailbox",
        "error_count": 2,
    }
    assert alice.get("/v1/addresses", params={"blocked": "true"}).json()["items"] == []
    assert [a["address"] for a in alice.get("/v1/addresses").json()["items"]] == [ADDRESS]


def test_a_reset_through_a_labelled_key_names_the_label(
    engine: Engine, alice: Caller, clock: ManualClock
) -> None:
    block(engine, alice, clock)
    with engine.begin() as conn:
        key = create_api_key(conn, alice.tenant.id, now=clock(), label="front desk")
    answer = alice.post(
        f"/v1/addresses/{ADDRESS}/reset",
        json={"reason": "checked by phone", "by": "Marc"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200
    with engine.connect() as conn:
        actors = list(conn.execute(select(address_audit.c.actor)).scalars())
    assert "Marc (key front desk)" in actors


def test_a_reset_without_a_reason_is_refused_naming_the_field(
    engine: Engine, alice: Caller, clock: ManualClock
) -> None:
    block(engine, alice, clock)
    for body in ({"by": "Claire"}, {"reason": "   ", "by": "Claire"}):
        answer = alice.post(f"/v1/addresses/{ADDRESS}/reset", json=body)
        assert answer.status_code == 422
        assert answer.json()["error"]["field"] == "reason"
    assert alice.get(f"/v1/addresses/{ADDRESS}").json()["blocked"] is True


def test_an_address_the_tenant_has_no_record_of_is_404_even_if_another_tenant_has_one(
    engine: Engine, alice: Caller, bob: Caller, clock: ManualClock
) -> None:
    block(engine, alice, clock)
    assert bob.get(f"/v1/addresses/{ADDRESS}").status_code == 404
    assert bob.post(f"/v1/addresses/{ADDRESS}/reset", json={"reason": "x"}).status_code == 404
    assert bob.get("/v1/addresses").json()["items"] == []
    assert alice.get(f"/v1/addresses/{ADDRESS}").json()["blocked"] is True


def test_the_list_is_paged_with_a_cursor(engine: Engine, alice: Caller, clock: ManualClock) -> None:
    for n in range(3):
        block(engine, alice, clock, f"m{n}@example.test")
    first = alice.get("/v1/addresses", params={"limit": 2}).json()
    assert [a["address"] for a in first["items"]] == ["m2@example.test", "m1@example.test"]
    second = alice.get("/v1/addresses", params={"limit": 2, "cursor": first["next_cursor"]})
    assert [a["address"] for a in second.json()["items"]] == ["m0@example.test"]
    assert second.json()["next_cursor"] is None
    bad = alice.get("/v1/addresses", params={"cursor": "nonsense!"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "cursor"
