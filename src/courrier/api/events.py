"""``POST /v1/events`` and ``POST /v1/events/batch``: events to intake, answers with what they planned."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from courrier.api.auth import RequestKey, get_engine, tenant_of
from courrier.api.fields import FieldProblem
from courrier.api.models import (
    EventAccepted,
    EventIn,
    EventResult,
    EventsAccepted,
    EventsIn,
    PlannedOut,
)
from courrier.api.responses import model_response
from courrier.engine.intake import EventInput, Intake, IntakeResult
from courrier.errors import ValidationError

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.post("", status_code=202, response_model=EventAccepted, summary="Accept an event")
def post_event(body: EventIn, request: Request, key: RequestKey) -> Response:
    """Store the event, update its subject and plan its messages, in one transaction.

    Posting the same ``idempotency_key`` again stores and plans nothing and
    answers the same body, with the header ``Idempotent-Replayed: true``.
    """
    tenant = tenant_of(get_engine(request), key)  # in this thread: see auth.request_key
    intake: Intake = request.app.state.intake
    result = intake.accept(tenant, _event_input(body))
    answer = EventAccepted(event_id=result.event_id, messages=_planned(result))
    return model_response(answer, 202, {} if result.created else {"Idempotent-Replayed": "true"})


@router.post(
    "/batch",
    status_code=202,
    response_model=EventsAccepted,
    summary="Accept several events at once",
)
def post_events(body: EventsIn, request: Request, key: RequestKey) -> Response:
    """Accept up to 500 events in one transaction: all of them, or none.

    Each event is what ``POST /v1/events`` takes, and gets the answer that
    call would give, in the order posted; ``replayed`` is true for an
    idempotency key seen before (earlier in the same batch too). One bad
    event refuses the whole batch with a 422 whose field starts with its
    position (``events.3.subject.start``); nothing is stored.
    """
    tenant = tenant_of(get_engine(request), key)
    inputs = []
    for index, event in enumerate(body.events):
        try:
            inputs.append(_event_input(event))
        except ValidationError as exc:
            raise _in_batch(exc, index) from exc
    intake: Intake = request.app.state.intake
    try:
        results = intake.accept_many(tenant, inputs)
    except ValidationError as exc:
        if exc.event is None:
            raise
        raise _in_batch(exc, exc.event) from exc
    return model_response(
        EventsAccepted(
            results=[
                EventResult(event_id=r.event_id, messages=_planned(r), replayed=not r.created)
                for r in results
            ]
        ),
        202,
    )


def _event_input(body: EventIn) -> EventInput:
    """What intake takes of a posted event; a NUL character anywhere is a 422 naming it."""
    try:
        subject = body.subject_state()
        payload = body.payload_data()
    except FieldProblem as exc:
        raise ValidationError(exc.message, field=exc.field) from exc
    return EventInput(
        type=body.type,
        idempotency_key=body.idempotency_key,
        occurred_at=body.occurred_at,
        subject=subject,
        payload=payload,
    )


def _in_batch(exc: ValidationError, index: int) -> ValidationError:
    """The error of the event at ``index`` of a batch, its field a path from the batch's body."""
    message = exc.message.removeprefix(f"event {index}: ")
    return ValidationError(message, field=f"events.{index}.{exc.field or 'body'}", event=index)


def _planned(result: IntakeResult) -> list[PlannedOut]:
    return [
        PlannedOut(
            id=m.id,
            kind=m.kind,
            channel=m.channel,
            address=m.address,
            contact=m.contact,
            status=m.status,
            due_at=m.due_at,
        )
        for m in result.messages
    ]
