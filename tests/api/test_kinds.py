"""/v1/kinds: a tenant reads its catalogue, switches kinds, tunes offsets and templates, adds kinds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from courrier.channels.email import SmtpSender
from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from courrier.settings import Settings
from tests.api.conftest import Caller, booking, member


def kinds_by_name(caller: Caller) -> dict[str, dict[str, Any]]:
    response = caller.get("/v1/kinds")
    assert response.status_code == 200, response.text
    return {k["name"]: k for k in response.json()["items"]}


def planned_kinds(caller: Caller, body: dict[str, Any]) -> dict[str, str]:
    response = caller.post("/v1/events", json=body)
    assert response.status_code == 202, response.text
    return {m["kind"]: m["due_at"] for m in response.json()["messages"]}


def test_the_catalogue_lists_every_default_kind_switched_on(alice: Caller) -> None:
    kinds = kinds_by_name(alice)
    assert {"booking.confirmation", "booking.reminder_24h", "request.comment_internal"} <= set(
        kinds
    )
    reminder = kinds["booking.reminder_24h"]
    assert reminder["enabled"] and not reminder["custom"]
    assert reminder["timing"] == {
        "mode": "before_date",
        "offset_minutes": 0,
        "date_field": "start",
        "days": 1,
        "min_lead_minutes": 2880,
        "zone": "venue",
    }
    assert kinds["member.password_reset"]["preference_optional"] is False


def test_a_kind_switched_off_is_no_longer_planned(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    response = alice.patch("/v1/kinds/booking.reminder_1h", json={"enabled": False})
    assert response.status_code == 200, response.text
    assert response.json()["enabled"] is False
    planned = planned_kinds(alice, booking())
    assert "booking.reminder_1h" not in planned
    assert "booking.reminder_30min" in planned


def test_each_change_to_the_kinds_holds_from_the_next_event_on(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    assert "booking.reminder_1h" in planned_kinds(alice, booking("B-1"))
    alice.patch("/v1/kinds/booking.reminder_1h", json={"enabled": False})
    assert "booking.reminder_1h" not in planned_kinds(alice, booking("B-2"))
    alice.patch("/v1/kinds/booking.reminder_1h", json={"enabled": True})
    assert "booking.reminder_1h" in planned_kinds(alice, booking("B-3"))
    timing = {"mode": "before_date", "date_field": "start", "offset_minutes": 120}
    alice.patch("/v1/kinds/booking.reminder_1h", json={"timing": timing})
    assert planned_kinds(alice, booking("B-4"))["booking.reminder_1h"] == "2026-03-05T07:00:00Z"


def test_a_changed_offset_moves_the_reminder(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    timing = {"mode": "before_date", "date_field": "start", "offset_minutes": 120}
    response = alice.patch("/v1/kinds/booking.reminder_1h", json={"timing": timing})
    assert response.status_code == 200, response.text
    assert response.json()["changed"] == ["timing"]
    planned = planned_kinds(alice, booking())  # starts 2026-03-05 10:00 Paris = 09:00 UTC
    assert planned["booking.reminder_1h"] == "2026-03-05T07:00:00Z"
    # the other tenant keeps the default
    assert kinds_by_name(alice)["booking.reminder_30min"]["timing"]["offset_minutes"] == 30


def test_bad_settings_get_a_422_saying_what_is_wrong(alice: Caller) -> None:
    cases = [
        ({"timing": {"mode": "sometime"}}, "timing.mode"),
        (
            {"timing": {"mode": "before_date", "date_field": "start", "offset_minutes": -5}},
            "timing.offset_minutes",
        ),
        ({"timing": {"mode": "before_date", "date_field": "start", "at": "25:00"}}, "timing.at"),
        ({"conditions": [{"field": "paid", "op": "is", "value": True}]}, "conditions.0.op"),
        ({"recipients": ["booker"]}, "recipients"),
        ({"priority": 500}, "priority"),
    ]
    for body, field in cases:
        response = alice.patch("/v1/kinds/booking.reminder_1h", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["field"] == field, (body, response.json())
    assert alice.patch("/v1/kinds/no.such", json={"enabled": False}).status_code == 404


def test_a_template_error_is_caught_when_saved_naming_the_field_and_line(alice: Caller) -> None:
    bad = {"templates": {"fr": {"text": "Bonjour\n{{ subject.start | nosuchfilter }}\n"}}}
    response = alice.patch("/v1/kinds/booking.reminder_1h", json=bad)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "templates.fr.text"
    assert "line 2" in error["message"]
    unknown = {"templates": {"en": {"subject": "Hello {{ nobody.name }}"}}}
    response = alice.patch("/v1/kinds/booking.reminder_1h", json=unknown)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "templates.en.subject"


def test_an_overridden_subject_line_is_used(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member(locale="en"))
    templates = {"templates": {"en": {"subject": "Take-off at {{ subject.id }}"}}}
    response = alice.patch("/v1/kinds/booking.confirmation", json=templates)
    assert response.status_code == 200, response.text
    accepted = alice.post("/v1/events", json=booking()).json()
    [confirmation] = [m for m in accepted["messages"] if m["kind"] == "booking.confirmation"]
    stored = alice.get(f"/v1/messages/{confirmation['id']}").json()
    assert stored["subject_line"] == "Take-off at B-1001"


ORDER_TEMPLATES = {
    "en": {
        "subject": "Order {{ subject.id }} shipped",
        "text": "Your order {{ subject.id }} is on its way.\n",
        "html": "<p>Your order {{ subject.id }} is on its way.</p>",
    }
}


def order_kind(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "order.shipped",
        "subject_type": "order",
        "triggers": ["order.shipped"],
        "recipients": ["buyer"],
        "priority": 70,
        "templates": ORDER_TEMPLATES,
    }
    body.update(changes)
    return body


def test_a_custom_kind_plans_like_a_default_one(alice: Caller, bob: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    response = alice.post("/v1/kinds", json=order_kind())
    assert response.status_code == 201, response.text
    assert response.json()["custom"] is True
    event = {
        "type": "order.shipped",
        "idempotency_key": "o-1",
        "occurred_at": "2026-03-01T09:00:00+00:00",
        "subject": {"type": "order", "id": "O-1", "buyer": "m-17"},
    }
    accepted = alice.post("/v1/events", json=event)
    assert accepted.status_code == 202, accepted.text
    [message] = accepted.json()["messages"]
    assert message["kind"] == "order.shipped" and message["contact"] == "m-17"
    stored = alice.get(f"/v1/messages/{message['id']}").json()
    assert stored["subject_line"] == "Order O-1 shipped"
    assert "order.shipped" not in kinds_by_name(bob)


def test_a_custom_kind_with_a_reminder_timing_is_planned_before_its_date(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    kind = order_kind(
        name="order.pickup_reminder",
        triggers=[],
        replan=True,
        timing={"mode": "before_date", "date_field": "pickup_at", "days": 1, "at": "18:00"},
    )
    assert alice.post("/v1/kinds", json=kind).status_code == 201
    event = {
        "type": "order.created",
        "idempotency_key": "o-2",
        "occurred_at": "2026-03-01T09:00:00+00:00",
        "subject": {
            "type": "order",
            "id": "O-2",
            "buyer": "m-17",
            "pickup_at": "2026-03-10T11:00:00+01:00",
            "timezone": "Europe/Paris",
        },
    }
    planned = planned_kinds(alice, event)
    assert planned == {"order.pickup_reminder": "2026-03-09T17:00:00Z"}  # 18:00 in Paris


def test_a_custom_kind_is_refused_when_it_cannot_work(alice: Caller) -> None:
    assert alice.post("/v1/kinds", json=order_kind()).status_code == 201
    cases = [
        (order_kind(), "name"),  # taken
        (order_kind(name="booking.confirmation"), "name"),
        (order_kind(name="order.x", templates={}), "templates.en"),
        (order_kind(name="order.y", recipients=[]), "recipients"),
        (order_kind(name="order.z", triggers=[]), "triggers"),
        (order_kind(name="order.w", channels=["pigeon"]), "channels"),
    ]
    for body, field in cases:
        response = alice.post("/v1/kinds", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["field"] == field, (field, response.json())


def test_a_kind_switched_off_after_planning_is_cancelled_when_due(
    alice: Caller, clock: ManualClock, settings: Settings, engine: Engine
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    body = booking()
    body["subject"]["paid"] = True
    planned = planned_kinds(alice, body)
    assert "booking.reminder_30min" in planned
    assert (
        alice.patch("/v1/kinds/booking.reminder_30min", json={"enabled": False}).status_code == 200
    )
    assert settings.smtp is not None
    sender = SmtpSender(settings.smtp, pool_size=1, timeout=5.0)
    dispatcher = Dispatcher(engine, settings, sender, clock=clock, worker_id="w")
    try:
        clock.advance(timedelta(days=5))
        while dispatcher.run_once():
            pass
    finally:
        dispatcher.close()
        sender.close()
    [reminder] = alice.get("/v1/messages", params={"kind": "booking.reminder_30min"}).json()[
        "items"
    ]
    detail = alice.get(f"/v1/messages/{reminder['id']}").json()
    assert detail["status"] == "cancelled"
    assert detail["status_reason"] == "booking.reminder_30min is switched off for this tenant"
