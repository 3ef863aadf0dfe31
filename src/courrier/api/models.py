"""The request and response bodies of the REST API, as typed pydantic models.

They are the integrator's contract (published in ``/openapi.json``). Every
text field refuses NUL bytes and is bounded in length, so bad input is a 422
naming the field instead of a database error.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

#: Instants outside these years are refused: they overflow on conversion to UTC.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
PHONE = re.compile(r"^\+?[0-9 ().\-]{3,31}$")
LOCALE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")


def no_nul(value: str) -> str:
    """Refuse NUL bytes: PostgreSQL cannot store them in text."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def email_address(value: str) -> str:
    """A syntactically valid address (no DNS lookup), normalised."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"is not a valid email address ({exc})") from exc


def time_zone(value: str) -> str:
    """An IANA zone name that zoneinfo knows, such as Europe/Paris."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"is not a known time zone: {value!r} (write e.g. Europe/Paris)") from exc
    return value


def locale_tag(value: str) -> str:
    if not LOCALE.match(value):
        raise ValueError("must be a language tag such as fr or fr-FR")
    return value


def phone_number(value: str) -> str:
    if not PHONE.match(value):
        raise ValueError("must be a phone number such as +33 6 12 34 56 78")
    return value


def id_as_text(value: Any) -> Any:
    """Ids may be sent as numbers; they are kept as text. Numbers past 64 bits are refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:
            raise ValueError("is too large a number for an id")
        return str(value)
    return value


def reasonable_instant(value: datetime) -> datetime:
    if not EARLIEST <= value <= LATEST:
        raise ValueError("must be between the years 1900 and 9000")
    return value


def check_text(value: str, path: str) -> None:
    """Text a database can store: no NUL character, no lone surrogate."""
    if "\x00" in value:
        raise FieldProblem(path, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FieldProblem(path, "must be valid Unicode text") from exc


def check_plain(value: Any, path: str, depth: int = 0) -> None:
    """Check free-form JSON (a subject's state): no NUL, no NaN or infinity, at most 20 levels deep.

    Raises :class:`FieldProblem` naming the dotted path of the bad value.
    """
    if depth > 20:
        raise FieldProblem(path, "is nested too deeply")
    if isinstance(value, str):
        check_text(value, path)
    if isinstance(value, float) and not math.isfinite(value):
        raise FieldProblem(path, "must be a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            check_text(key, path)
            check_plain(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_plain(item, f"{path}.{index}", depth + 1)


class FieldProblem(ValueError):
    """A problem found after parsing, naming its field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


Text = Annotated[str, StringConstraints(max_length=200), AfterValidator(no_nul)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(no_nul)]
Email = Annotated[
    str, StringConstraints(max_length=320), AfterValidator(no_nul), AfterValidator(email_address)
]
Zone = Annotated[
    str, StringConstraints(max_length=64), AfterValidator(no_nul), AfterValidator(time_zone)
]
Locale = Annotated[str, StringConstraints(max_length=16), AfterValidator(locale_tag)]
Phone = Annotated[str, StringConstraints(max_length=32), AfterValidator(phone_number)]
Instant = Annotated[AwareDatetime, AfterValidator(reasonable_instant)]
DottedName = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$", max_length=100)
]
TypeName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


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

    def subject_state(self) -> dict[str, Any]:
        """The subject as one dict (type, id and every extra field), checked for NUL bytes."""
        state = self.subject.model_dump()
        check_plain(state, "subject")
        return state


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


class MessageDetail(MessageSummary):
    """One message with its rendered content and its timeline, oldest step first."""

    message_id_header: str
    locale: str
    from_addr: str
    from_name: str | None
    reply_to: str | None
    to_name: str | None
    body_text: str
    body_html: str | None
    attachments: list[AttachmentOut]
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
