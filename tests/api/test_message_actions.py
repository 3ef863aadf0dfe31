"""``POST /v1/messages/{id}/retry`` and ``/cancel``: staff send again or withdraw one message.

Messages are written in each status straight into the database; the API's
answer, the row and the timeline are read back. The race between a cancel
and a worker's claim runs the real claim (``store.queue.claim_due``).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from courrier.api.app import create_app
from courrier.clock import ManualClock
from courrier.engine.wakeup import Wakeup
from courrier.settings import Settings
from courrier.store import health, staff_actions
from courrier.store.queue import claim_due
from courrier.store.schema import api_keys, messages, tenants
from tests.api.conftest import Caller
from tests.support.factories import insert_message, message_row

STAFF = {"reason": "the member asked on the phone", "by": "Claire (office)"}
ENDED = ["failed", "bounced", "suppressed"]
WAITING = ["planned", "due"]
OTHERS = ["sending", "sent", "delivered", "opened", "clicked", "accessed", "cancelled"]


def add(engine: Engine, caller: Caller, clock: ManualClock, status: str, **changes: Any) -> int:
    """One confirmation of ``caller``'s tenant in ``status``; its id."""
    row = message_row(caller.tenant.id, 1, now=clock(), status=status, **changes)
    if status == "sending":
        row.update(lease_owner="w-1", lease_until=clock() + timedelta(minutes=5), attempts=1)
    with engine.begin() as conn:
        return insert_message(conn, row)


def stored(engine: Engine, message_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(messages).where(messages.c.id == message_id)).one()
    return dict(row._mapping)


def key_prefix(engine: Engine, caller: Caller) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                select(api_keys.c.prefix).where(api_keys.c.tenant_id == caller.tenant.id)
            ).scalar_one()
        )


# --- retry ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ENDED)
def test_an_ended_message_goes_back_in_the_queue_due_now_as_the_same_mail(
    engine: Engine, alice: Caller, clock: ManualClock, status: str
) -> None:
    message_id = add(engine, alice, clock, status, attempts=3, status_reason="550 User unknown")
    before = stored(engine, message_id)
    clock.advance(timedelta(hours=5))
    answer = alice.post(f"/v1/messages/{message_id}/retry", json=STAFF)
    assert answer.status_code == 200, answer.text
    actor = f"Claire (office) (key {key_prefix(engine, alice)})"
    after = stored(engine, message_id)
    assert (after["status"], after["attempts"], after["due_at"]) == ("due", 0, clock())
    assert (after["lease_owner"], after["lease_until"], after["sent_at"]) == (None, None, None)
    assert after["status_reason"] == f"requeued by {actor}: {STAFF['reason']}"
    assert after["message_id_header"] == before["message_id_header"]
    body = answer.json()
    assert (body["status"], body["message_id_header"]) == ("due", before["message_id_header"])
    assert body["timeline"][-1] == {
        "at": body["timeline"][-1]["at"],
        "status": "due",
        "entry": "requeued",
        "reason": STAFF["reason"],
        "data": {"by": actor, "was": status},
    }
    assert alice.get(f"/v1/messages/{message_id}").json()["timeline"] == body["timeline"]


def test_without_by_the_actor_is_staff_and_the_key(
    engine: Engine, alice: Caller, clock: ManualClock
) -> None:
    message_id = add(engine, alice, clock, "failed")
    answer = alice.post(f"/v1/messages/{message_id}/retry", json={"reason": "try again"})
    assert answer.status_code == 200
    assert answer.json()["timeline"][-1]["data"]["by"] == f"staff (key {key_prefix(engine, alice)})"


@pytest.mark.parametrize("status", WAITING + OTHERS)
def test_a_message_not_ended_is_not_retried_and_the_answer_names_its_status(
    engine: Engine, alice: Caller, clock: ManualClock, status: str
) -> None:
    message_id = add(engine, alice, clock, status)
    answer = alice.post(f"/v1/messages/{message_id}/retry", json=STAFF)
    assert answer.status_code == 409
    assert answer.json() == {
        "error": {
            "code": "conflict",
            "message": f"message {message_id} is {status}: only a failed, bounced or "
            "suppressed message can be sent again",
        }
    }
    assert stored(engine, message_id)["status"] == status


def test_a_message_to_a_blocked_address_is_not_retried_until_the_address_is_reset(
    engine: Engine, alice: Caller, clock: ManualClock
) -> None:
    message_id = add(engine, alice, clock, "suppressed", address="Gone@Example.test")
    with engine.begin() as conn:
        conn.execute(
            update(tenants).where(tenants.c.id == alice.tenant.id).values(block_threshold=0)
        )
        error = health.AddressError(
            alice.tenant.id, "gone@example.test", "smtp", 550, "5.1.1", "User unknown", message_id
        )
        health.record_errors(conn, [error], clock())
    answer = alice.post(f"/v1/messages/{message_id}/retry", json=STAFF)
    assert answer.status_code == 409
    assert answer.json()["error"]["message"] == (
        "the address gone@example.test is blocked; reset the address first: "
        "POST /v1/addresses/gone@example.test/reset"
    )
    assert stored(engine, message_id)["status"] == "suppressed"
    assert alice.post("/v1/addresses/gone@example.test/reset", json=STAFF).status_code == 200
    assert alice.post(f"/v1/messages/{message_id}/retry", json=STAFF).status_code == 200


def test_a_follow_up_whose_original_was_read_is_not_retried(
    engine: Engine, alice: Caller, clock: ManualClock
) -> None:
    original = add(engine, alice, clock, "accessed")
    follow_up = add(engine, alice, clock, "failed", follow_up_of=original, follow_up_index=1)
    answer = alice.post(f"/v1/messages/{follow_up}/retry", json=STAFF)
    assert answer.status_code == 409
    assert answer.json()["error"]["message"] == (
        f"message {follow_up} is a follow-up that would not be sent: "
        f"the original (message {original}) was read: its link was followed"
    )


def test_a_retry_wakes_the_dispatcher(
    settings: Settings, engine: Engine, alice: Caller, clock: ManualClock
) -> None:
    wakeup = Wakeup()
    message_id = add(engine, alice, clock, "failed")
    with TestClient(create_app(settings, engine=engine, clock=clock, wakeup=wakeup)) as client:
        answer = client.post(f"/v1/messages/{message_id}/retry", json=STAFF, headers=alice.headers)
    assert answer.status_code == 200
    assert wakeup.wait(0) is True


# --- cancel --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", WAITING)
def test_a_waiting_message_is_cancelled_with_who_and_why(
    engine: Engine, alice: Caller, clock: ManualClock, status: str
) -> None:
    message_id = add(engine, alice, clock, status)
    answer = alice.post(f"/v1/messages/{message_id}/cancel", json=STAFF)
    assert answer.status_code == 200, answer.text
    actor = f"Claire (office) (key {key_prefix(engine, alice)})"
    body = answer.json()
    assert body["status"] == "cancelled"
    assert body["status_reason"] == f"withdrawn by {actor}: {STAFF['reason']}"
    assert body["timeline"][-1] == {
        "at": body["timeline"][-1]["at"],
        "status": "cancelled",
        "entry": "cancelled",
        "reason": STAFF["reason"],
        "data": {"by": actor},
    }


def test_a_message_being_sent_is_not_cancelled_and_the_answer_says_so(
    engine: Engine, alice: Caller, clock: ManualClock
) -> None:
    message_id = add(engine, alice, clock, "sending")
    answer = alice.post(f"/v1/messages/{message_id}/cancel", json=STAFF)
    assert answer.status_code == 409
    assert answer.json()["error"] == {
        "code": "conflict",
        "message": f"message {message_id} is being sent right now (a worker holds it): too late",
    }
    assert stored(engine, message_id)["status"] == "sending"


@pytest.mark.parametrize("status", [s for s in OTHERS if s != "sending"] + ENDED)
def test_a_message_no_longer_waiting_is_not_cancelled(
    engine: Engine, alice: Caller, clock: ManualClock, status: str
) -> None:
    message_id = add(engine, alice, clock, status)
    answer = alice.post(f"/v1/messages/{message_id}/cancel", json=STAFF)
    assert answer.status_code == 409
    assert answer.json()["error"]["message"] == (
        f"message {message_id} is {status}: only a planned or due message can be cancelled"
    )
    assert stored(engine, message_id)["status"] == status


def claim(engine: Engine, clock: ManualClock) -> list[int]:
    with engine.begin() as conn:
        claimed = claim_due(
            conn, now=clock(), worker_id="w-2", lease_until=clock() + timedelta(minutes=5), limit=10
        )
    return [c.id for c in claimed]


def test_a_claim_first_wins_over_a_cancel(
    engine: Engine, alice: Caller, clock: ManualClock
) -> None:
    message_id = add(engine, alice, clock, "due")
    assert claim(engine, clock) == [message_id]
    answer = alice.post(f"/v1/messages/{message_id}/cancel", json=STAFF)
    assert answer.status_code == 409
    assert "being sent right now" in answer.json()["error"]["message"]


def test_a_cancel_first_leaves_nothing_to_claim(
    engine: Engine, alice: Caller, clock: ManualClock
) -> None:
    message_id = add(engine, alice, clock, "due")
    assert alice.post(f"/v1/messages/{message_id}/cancel", json=STAFF).status_code == 200
    assert claim(engine, clock) == []
    assert stored(engine, message_id)["status"] == "cancelled"


def test_a_cancel_waiting_on_a_claim_in_progress_finds_it_taken(
    engine: Engine, alice: Caller, clock: ManualClock
) -> None:
    """The claim's transaction is open when the cancel arrives: the cancel waits, then loses."""
    message_id = add(engine, alice, clock, "due")
    answers: list[Any] = []
    with engine.begin() as conn:
        claimed = claim_due(
            conn, now=clock(), worker_id="w-2", lease_until=clock() + timedelta(minutes=5), limit=1
        )
        assert [c.id for c in claimed] == [message_id]
        request = threading.Thread(
            target=lambda: answers.append(
                alice.post(f"/v1/messages/{message_id}/cancel", json=STAFF)
            )
        )
        request.start()
        time.sleep(0.5)  # the cancel is waiting on the claim's lock
        assert answers == []
    request.join(timeout=30)
    [answer] = answers
    assert answer.status_code == 409
    assert "being sent right now" in answer.json()["error"]["message"]
    assert stored(engine, message_id)["status"] == "sending"


def test_a_claim_during_a_cancel_in_progress_takes_nothing(
    engine: Engine, alice: Caller, clock: ManualClock
) -> None:
    """A worker claims while the cancel's transaction is open: it skips or waits, then finds none."""
    message_id = add(engine, alice, clock, "due")
    claimed: list[list[int]] = []
    with engine.begin() as conn:
        assert staff_actions.cancel(
            conn, alice.tenant.id, message_id, actor="Claire", reason="asked", now=clock()
        )
        worker = threading.Thread(target=lambda: claimed.append(claim(engine, clock)))
        worker.start()
        time.sleep(0.5)
    worker.join(timeout=30)
    assert claimed == [[]]
    assert stored(engine, message_id)["status"] == "cancelled"


# --- both ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "status"), [("retry", "failed"), ("cancel", "due")])
def test_another_tenants_message_is_not_found_and_left_alone(
    engine: Engine, alice: Caller, bob: Caller, clock: ManualClock, action: str, status: str
) -> None:
    message_id = add(engine, alice, clock, status)
    answer = bob.post(f"/v1/messages/{message_id}/{action}", json=STAFF)
    assert answer.status_code == 404
    assert answer.json() == {"error": {"code": "not_found", "message": f"no message {message_id}"}}
    assert stored(engine, message_id)["status"] == status
    assert alice.post(f"/v1/messages/99999/{action}", json=STAFF).status_code == 404


@pytest.mark.parametrize("action", ["retry", "cancel"])
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"by": "Claire"}, "reason: is required"),
        ({"reason": "   "}, "reason: String should have at least 1 character"),
        ({"reason": "x" * 1001}, "reason: String should have at most 1000 characters"),
        ({"reason": "ok", "by": "y" * 101}, "by: String should have at most 100 characters"),
    ],
)
def test_a_missing_empty_or_too_long_reason_is_refused_naming_the_field(
    engine: Engine,
    alice: Caller,
    clock: ManualClock,
    action: str,
    body: dict[str, Any],
    message: str,
) -> None:
    message_id = add(engine, alice, clock, "failed" if action == "retry" else "due")
    answer = alice.post(f"/v1/messages/{message_id}/{action}", json=body)
    assert answer.status_code == 422
    assert answer.json()["error"] == {
        "code": "invalid",
        "message": message,
        "field": message.partition(":")[0],
    }


def test_both_actions_are_described_in_the_openapi_schema(alice: Caller) -> None:
    paths = alice.get("/openapi.json").json()["paths"]
    retry = paths["/v1/messages/{message_id}/retry"]["post"]
    cancel = paths["/v1/messages/{message_id}/cancel"]["post"]
    assert retry["summary"] == "Send again a message that failed, bounced or was suppressed"
    assert cancel["summary"] == "Withdraw a message still waiting to be sent"
    assert {"200", "404", "409", "422"} <= set(retry["responses"])
