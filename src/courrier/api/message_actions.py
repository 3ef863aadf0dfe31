"""Staff actions on one message: ``POST /v1/messages/{id}/retry`` and ``.../cancel``.

A message that ended failed, bounced or suppressed (e.g. its address was
blocked, then reset by staff) can be sent again: the same mail, with the
same Message-ID, back in the queue and due now. A message still waiting can
be withdrawn. Both name who did it and why, as an address reset does (the
person in ``by``, and the API key), and both land in the message's timeline.

What cannot be done answers 409 saying why (the status it is in, the
blocked address to reset first, the follow-up whose original was read, the
reminder whose date has passed).
The dispatcher's send-time checks still decide at claim time, as for any
message: a retried reminder for a booking since cancelled is withdrawn.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, select

from courrier.api.addresses import Name, Text, key_name
from courrier.api.auth import AppClock, CurrentTenant, DbEngine, bearer_key
from courrier.api.errors import error_response
from courrier.api.messages import message_detail
from courrier.api.models import ErrorOut, MessageDetail
from courrier.api.paging import MAX_ID
from courrier.domain.kinds import DEFAULT_CATALOGUE
from courrier.domain.planning import anchor_date
from courrier.domain.status import MessageStatus
from courrier.engine.followups import stale_follow_ups
from courrier.engine.wakeup import notify_due
from courrier.errors import NotFoundError
from courrier.store import health, staff_actions
from courrier.store.kinds import Catalogues
from courrier.store.queue import ClaimedMessage
from courrier.store.schema import subjects

router = APIRouter(prefix="/v1/messages", tags=["messages"])

MessageId = Annotated[int, Path(ge=1, le=MAX_ID)]
S = MessageStatus
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "Not possible now; the message says why"}
}


class StaffActionIn(BaseModel):
    """Why, and who (as for an address reset: the API key is added to ``by``)."""

    model_config = ConfigDict(extra="forbid")

    reason: Text
    by: Name | None = None


class Refused(Exception):
    """The action is not possible now; the message says why (answered as 409)."""


def _actor(conn: Connection, request: Request, tenant_id: int, by: str | None) -> str:
    return f"{by or 'staff'} (key {key_name(conn, tenant_id, bearer_key(request))})"


def _conflict(exc: Refused) -> JSONResponse:
    return error_response(409, "conflict", str(exc))


def _moment_passed(conn: Connection, row: dict[str, Any], now: datetime) -> str | None:
    """Why a reminder may not go again: the subject's date it announces has passed.

    One sent again by hand after the booking began would announce the past;
    the send-time check would withdraw it (:mod:`courrier.engine.sendcheck`),
    but refusing here tells staff at once instead of after a round trip
    through the queue.
    """
    if row["subject_id"] is None:
        return None
    found = Catalogues(conn, DEFAULT_CATALOGUE).of(int(row["tenant_id"])).get(str(row["kind"]))
    if found is None or not found.kind.timing.anchored:
        return None
    state = conn.execute(select(subjects.c.state).where(subjects.c.id == row["subject_id"]))
    date = anchor_date(found.kind.timing, dict(state.scalar() or {}))
    if date is None or date > now:
        return None  # no date any more: the send-time check cancels it, saying so
    return (
        f"message {row['id']} is a {row['kind']} for {found.kind.timing.date_field} "
        f"{date.isoformat()}, which has passed"
    )


def _why_not_retry(conn: Connection, row: dict[str, Any], now: datetime) -> str | None:
    """Why this message may not go again now, or None when it may."""
    status = S(str(row["status"]))
    message_id = row["id"]
    if status not in staff_actions.REQUEUEABLE:
        return (
            f"message {message_id} is {status.value}: only a failed, bounced or suppressed "
            "message can be sent again"
        )
    address = health.normalise(str(row["address"]))
    blocked = health.blocked_rows(conn, [(int(row["tenant_id"]), address)])
    if blocked:
        return (
            f"the address {address} is blocked; reset the address first: "
            f"POST /v1/addresses/{address}/reset"
        )
    if row.get("follow_up_of") is not None:
        claimed = ClaimedMessage(row, status, None)
        for verdict in stale_follow_ups(conn, [claimed]):
            return f"message {message_id} is a follow-up that would not be sent: {verdict.reason}"
    return _moment_passed(conn, row, now)


@router.post(
    "/{message_id}/retry",
    response_model=MessageDetail,
    responses=CONFLICT,
    summary="Send again a message that failed, bounced or was suppressed",
)
def retry_message(
    message_id: MessageId,
    body: StaffActionIn,
    request: Request,
    tenant: CurrentTenant,
    engine: DbEngine,
    clock: AppClock,
) -> MessageDetail | JSONResponse:
    """Back in the queue, due now, as the same mail (same Message-ID), attempts from 0.

    The timeline gets a ``requeued`` entry with who (``data.by``) and why.
    409 when the message is in another status, its address is blocked (reset
    it first), it is a follow-up whose original was read or answered, or a
    reminder whose date has passed.
    """
    now = clock()
    try:
        with engine.begin() as conn:
            row = staff_actions.find(conn, tenant.id, message_id)
            if row is None:
                raise NotFoundError(f"no message {message_id}")
            why = _why_not_retry(conn, row, now)
            if why is not None:
                raise Refused(why)
            actor = _actor(conn, request, tenant.id, body.by)
            was = S(str(row["status"]))
            if not staff_actions.requeue(
                conn, tenant.id, message_id, was=was, actor=actor, reason=body.reason, now=now
            ):
                raise Refused(f"message {message_id} changed meanwhile; read it again")
            notify_due(conn)
    except Refused as exc:
        return _conflict(exc)
    wakeup = getattr(request.app.state, "wakeup", None)
    if wakeup is not None:
        wakeup.poke()
    return message_detail(message_id, tenant, engine)


def _why_not_cancel(message_id: int, status: str) -> str:
    if status == S.SENDING.value:
        return f"message {message_id} is being sent right now (a worker holds it): too late"
    return f"message {message_id} is {status}: only a planned or due message can be cancelled"


@router.post(
    "/{message_id}/cancel",
    response_model=MessageDetail,
    responses=CONFLICT,
    summary="Withdraw a message still waiting to be sent",
)
def cancel_message(
    message_id: MessageId,
    body: StaffActionIn,
    request: Request,
    tenant: CurrentTenant,
    engine: DbEngine,
    clock: AppClock,
) -> MessageDetail | JSONResponse:
    """A planned or due message becomes cancelled, with a ``cancelled`` entry (who, why).

    409 for any other status, including a message a worker is sending now:
    the change and the claim are one conditional update each, so exactly
    one of them wins.
    """
    now = clock()
    try:
        with engine.begin() as conn:
            actor = _actor(conn, request, tenant.id, body.by)
            done = staff_actions.cancel(
                conn, tenant.id, message_id, actor=actor, reason=body.reason, now=now
            )
            if not done:
                row = staff_actions.find(conn, tenant.id, message_id)
                if row is None:
                    raise NotFoundError(f"no message {message_id}")
                raise Refused(_why_not_cancel(message_id, str(row["status"])))
    except Refused as exc:
        return _conflict(exc)
    return message_detail(message_id, tenant, engine)
