"""The request and response bodies of the REST API, as typed pydantic models.

They are the integrator's contract (published in ``/openapi.json``). Their
fields are checked by :mod:`courrier.api.fields`, so bad input is a 422
naming the field instead of a database error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from courrier.api.fields import (
    DottedName,
    Email,
    Instant,
    Locale,
    Name,
    Phone,
    Text,
    TypeName,
    Zone,
    check_plain,
    id_as_text,
)


class ContactIn(BaseModel):
    """A contact as the integrator sends it; a field left out is cleared."""

    model_config = ConfigDict(extra="forbid")

    name: Text | None = None
    email: Email | None = None
    other_emails: list[Email] = Field(default_factory=list, max_length=50)
    phone: Phone | None = None
    locale: Locale | None = None
    timezone: Zone | None = None
    roles: list[Name] = Field(default_factory=list, max_length=50)
    staff_profiles: list[Name] = Field(default_factory=list, max_length=50)
    #: staff copy of every booking: one mail each, a daily digest, or none; left out: unchanged
    booking_copy: Literal["off", "each", "digest"] | None = None


class ContactOut(BaseModel):
    """A stored contact."""

    external_id: str
    name: str | None
    email: str | None
    other_emails: list[str]
    phone: str | None
    locale: str | None
    timezone: str | None
    roles: list[str]
    staff_profiles: list[str]
    booking_copy: str
    created_at: datetime
    updated_at: datetime


class SubjectIn(BaseModel):
    """What an event is about: its type and id, plus its current state (start, end, booker...)."""

    model_config = ConfigDict(extra="allow")

    type: TypeName
    id: Annotated[Name, BeforeValidator(id_as_text)]


class EventIn(BaseModel):
    """Something that happened, posted by the integrator."""

    model_config = ConfigDict(extra="forbid")

    type: DottedName = Field(examples=["booking.created"])
    idempotency_key: Name
    occurred_at: Instant
    subject: SubjectIn
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description="The event's own data: a comment {visibility, author, text}, the participant"
        " or follower added, a password reset link...",
    )

    def subject_state(self) -> dict[str, Any]:
        """The subject as one dict (type, id and every extra field), checked for NUL bytes."""
        state = self.subject.model_dump()
        check_plain(state, "subject")
        return state

    def payload_data(self) -> dict[str, Any]:
        """The payload, checked for NUL bytes."""
        check_plain(self.payload, "payload")
        return self.payload


class PlannedOut(BaseModel):
    """A message planned by an event."""

    id: int
    kind: str
    channel: str
    address: str
    contact: str | None
    status: str
    due_at: datetime


class EventAccepted(BaseModel):
    """The answer to an accepted event; the same for a repeat of its idempotency key."""

    event_id: int
    messages: list[PlannedOut]


#: events accepted at most in one ``POST /v1/events/batch``
MAX_EVENTS_BATCH = 500


class EventsIn(BaseModel):
    """Several events, accepted together in one transaction (all or none)."""

    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS_BATCH)


class EventResult(EventAccepted):
    """One event's answer in a batch; ``replayed``: its idempotency key was seen before."""

    replayed: bool


class EventsAccepted(BaseModel):
    """The answers to a batch of events, in the order they were posted."""

    results: list[EventResult]


class SubjectRef(BaseModel):
    type: str
    id: str


class MessageSummary(BaseModel):
    """One message in a list."""

    id: int
    kind: str
    channel: str
    address: str
    status: str
    status_reason: str | None
    priority: int
    attempts: int
    subject: SubjectRef | None
    contact: str | None
    subject_line: str
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


class MessagePage(BaseModel):
    """A page of messages, newest first; ``next_cursor`` fetches the next one (null at the end)."""

    items: list[MessageSummary]
    next_cursor: str | None


class AttachmentOut(BaseModel):
    filename: str
    content_type: str
    size: int


class TimelineEntryOut(BaseModel):
    """One step in a message's life."""

    at: datetime
    status: str
    entry: str
    reason: str | None
    data: dict[str, Any] | None


class FollowUpOut(BaseModel):
    """A follow-up planned for an important message."""

    id: int
    follow_up_index: int
    status: str
    status_reason: str | None
    due_at: datetime
    sent_at: datetime | None


class ReadingOut(BaseModel):
    """Whether the message arrived and was read, from its timeline.

    ``opened_at`` is a weak signal (mail clients and filters fetch images by
    themselves); ``accessed_at`` (the signed original page was followed) is
    the proof of reading, and ``read`` says whether there is that proof.
    """

    delivered_at: datetime | None
    opened_at: datetime | None
    opens: int
    clicked_at: datetime | None
    clicks: int
    accessed_at: datetime | None
    read: bool
    bounced_at: datetime | None


class MessageDetail(MessageSummary):
    """One message with its rendered content and its timeline, oldest step first.

    ``follow_up`` is the message's follow-up policy (null: none);
    ``follow_up_of`` names the original when the message is itself a
    follow-up; ``follow_ups`` lists those planned for it.
    """

    message_id_header: str
    locale: str
    from_addr: str
    from_name: str | None
    reply_to: str | None
    to_name: str | None
    body_text: str
    body_html: str | None
    attachments: list[AttachmentOut]
    cc: list[str]
    bcc: list[str]
    follow_up: dict[str, Any] | None
    follow_up_of: int | None
    follow_up_index: int | None
    follow_ups: list[FollowUpOut]
    reading: ReadingOut
    timeline: list[TimelineEntryOut]


class CapturedSummary(BaseModel):
    """A mail kept by the local capture."""

    id: int
    received_at: datetime
    envelope_from: str | None
    recipients: list[str]
    subject: str | None
    message_id_header: str | None


class CapturedPart(BaseModel):
    index: int
    filename: str | None
    content_type: str
    size: int
    url: str


class CapturedDetail(CapturedSummary):
    """A captured mail taken apart: headers, text, HTML and attachments."""

    headers: list[tuple[str, str]]
    text: str | None
    html: str | None
    attachments: list[CapturedPart]
    raw_url: str
    ics_url: str | None


class CapturedPage(BaseModel):
    items: list[CapturedSummary]
    next_cursor: str | None


class Health(BaseModel):
    status: str
    database: str


class ErrorDetail(BaseModel):
    """What went wrong: a stable ``code``, a message for people, the ``field`` when there is one."""

    code: str = Field(examples=["invalid"])
    message: str
    field: str | None = Field(default=None, examples=["subject.start"])


class ErrorOut(BaseModel):
    """The one shape of every error answer."""

    error: ErrorDetail


#: Error answers every authenticated route may give, for the OpenAPI description.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No API key, or not a valid one"},
    404: {"model": ErrorOut, "description": "No such record for this tenant"},
    413: {"model": ErrorOut, "description": "The body is over 1 MiB"},
    422: {"model": ErrorOut, "description": "Invalid input; `field` names it"},
}
