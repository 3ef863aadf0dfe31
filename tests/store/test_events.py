"""Events' stored answers: what a repeat of an idempotency key gets back."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from courrier.store.events import insert_events, store_answers, stored_answers
from courrier.store.tenants import Tenant
from tests.store.conftest import NOW


def test_stored_answers_come_back_as_given_and_others_stay_unanswered(
    engine: Engine, tenant: Tenant
) -> None:
    rows = [
        {
            "tenant_id": tenant.id,
            "type": "booking.created",
            "idempotency_key": key,
            "subject_id": None,
            "payload": {},
            "occurred_at": NOW,
            "received_at": NOW,
        }
        for key in ("k1", "k2", "k3")
    ]
    answer = {"event_id": 0, "messages": [{"id": 7, "kind": "booking.confirmation", "n": None}]}
    with engine.begin() as conn:
        first, second, third = insert_events(conn, rows)
        store_answers(conn, [(first, {**answer, "event_id": first}), (third, {"messages": []})])
    with engine.connect() as conn:
        found = stored_answers(conn, tenant.id, ["k1", "k2", "k3", "k4"])
    assert found == {
        "k1": {**answer, "event_id": first},
        "k2": {"event_id": second, "messages": []},  # no answer stored: an empty one
        "k3": {"messages": []},
    }
