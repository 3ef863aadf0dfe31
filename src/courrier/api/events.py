"""``POST /v1/events``: hand an event to intake, answer with what it planned."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from courrier.api.auth import CurrentTenant
from courrier.api.fields import FieldProblem
from courrier.api.models import EventAccepted, EventIn, PlannedOut
from courrier.engine.intake import EventInput, Intake
from courrier.errors import ValidationError

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.post("", status_code=202, response_model=EventAccepted, summary="Accept an event")
def post_event(
    body: EventIn, request: Request, response: Response, tenant: CurrentTenant
) -> EventAccepted:
    """Store the event, update its subject and plan its messages, in one transaction.

    Posting the same ``idempotency_key`` again stores and plans nothing and
    answers the same body, with the header ``Idempotent-Replayed: true``.
    """
    try:
        subject = body.subject_state()
        payload = body.payload_data()
    except FieldProblem as exc:
        raise ValidationError(exc.message, field=exc.field) from exc
    event = EventInput(
        type=body.type,
        idempotency_key=body.idempotency_key,
        occurred_at=body.occurred_at,
        subject=subject,
        payload=payload,
    )
    intake: Intake = request.app.state.intake
    result = intake.accept(tenant, event)
    if not result.created:
        response.headers["Idempotent-Replayed"] = "true"
    return EventAccepted(
        event_id=result.event_id,
        messages=[
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
        ],
    )
