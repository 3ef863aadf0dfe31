"""Checking what an integrator posts: an event's envelope and its subject.

Every refusal is a :class:`~courrier.errors.ValidationError` naming the
field as a dotted path (``subject.end``), so the API can answer 422 with it.
Bookings, visits, requests, memberships and resources are checked field
by field; a subject of a type Courrier has no rules for passes through with only its ``type`` and ``id``
checked, so later issues can add event types without breaking old clients.
The result is a plain JSON-ready dict: the subject's state as stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from courrier.errors import ValidationError

EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
SUBJECT_TYPE = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_ID = 200


def check_envelope(event_type: object, idempotency_key: object, occurred_at: object) -> None:
    """Refuse a malformed event type, idempotency key or time."""
    if not isinstance(event_type, str) or len(event_type) > 100 or not EVENT_TYPE.match(event_type):
        raise ValidationError("type is a dotted lower-case name like 'booking.created'", "type")
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        raise ValidationError("idempotency_key is a non-empty string", "idempotency_key")
    if len(idempotency_key) > 200:
        raise ValidationError("idempotency_key is at most 200 characters", "idempotency_key")
    if not isinstance(occurred_at, datetime) or occurred_at.tzinfo is None:
        raise ValidationError("occurred_at is an instant with a UTC offset", "occurred_at")


def parse_instant(value: object, field: str) -> datetime:
    """An ISO 8601 date-time with its UTC offset (``Z`` or ``+02:00``); naive times are refused."""
    if isinstance(value, datetime):
        instant = value
    elif isinstance(value, str):
        try:
            instant = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValidationError(
                f"{field} is not an ISO 8601 date-time: {value!r}", field
            ) from exc
    else:
        raise ValidationError(f"{field} is an ISO 8601 date-time string", field)
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValidationError(f"{field} needs a UTC offset, e.g. 2026-03-01T10:00:00+01:00", field)
    return instant


def check_zone(value: object, field: str) -> str:
    """A real IANA time zone name (``Europe/Paris``)."""
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ValidationError(f"{field} is a time zone name like 'Europe/Paris'", field)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"{field} is not a known time zone: {value!r}", field) from exc
    return value


def _identifier(value: object, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError(f"{field} is a string identifier", field)
    text = str(value).strip()
    if not text or len(text) > MAX_ID:
        raise ValidationError(
            f"{field} is a non-empty identifier of at most {MAX_ID} characters", field
        )
    return text


def _text(value: object, field: str, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValidationError(f"{field} is a non-empty string", field)
    return value


def _resource(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError("subject.resource is an object {id?, name}", "subject.resource")
    resource = dict(value)
    resource["name"] = _text(value.get("name"), "subject.resource.name", required=True)
    if value.get("id") is not None:
        resource["id"] = _identifier(value["id"], "subject.resource.id")
    return resource


def _participants(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(
            "subject.participants is a list of contact ids", "subject.participants"
        )
    return [_identifier(item, f"subject.participants.{i}") for i, item in enumerate(value)]


def check_booking(subject: dict[str, Any], *, default_timezone: str) -> dict[str, Any]:
    """A booking: start before end (with offsets), a real zone, a booker, optional resource."""
    start = parse_instant(subject.get("start"), "subject.start")
    end = parse_instant(subject.get("end"), "subject.end")
    if end <= start:
        raise ValidationError("subject.end must come after subject.start", "subject.end")
    zone = subject.get("timezone", default_timezone)
    paid = subject.get("paid", False)
    if not isinstance(paid, bool):
        raise ValidationError("subject.paid is true or false", "subject.paid")
    return {
        **subject,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "timezone": check_zone(zone, "subject.timezone"),
        "booker": _identifier(subject.get("booker"), "subject.booker"),
        "resource": _resource(subject.get("resource")),
        "status": _text(subject.get("status", "confirmed"), "subject.status", required=True),
        "paid": paid,
        "participants": _participants(subject.get("participants")),
    }


def _ids(value: object, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(f"{field} is a list of contact ids", field)
    return [_identifier(item, f"{field}.{i}") for i, item in enumerate(value)]


def _optional_id(value: object, field: str) -> str | None:
    return None if value is None else _identifier(value, field)


def _window(subject: dict[str, Any], default_timezone: str) -> dict[str, Any]:
    """``start`` before ``end`` (both with offsets) and a real ``timezone``."""
    start = parse_instant(subject.get("start"), "subject.start")
    end = parse_instant(subject.get("end"), "subject.end")
    if end <= start:
        raise ValidationError("subject.end must come after subject.start", "subject.end")
    zone = subject.get("timezone", default_timezone)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "timezone": check_zone(zone, "subject.timezone"),
    }


def check_visit(subject: dict[str, Any], *, default_timezone: str) -> dict[str, Any]:
    """A visit: a window, a visitor, a host, optional co-hosts."""
    return {
        **subject,
        **_window(subject, default_timezone),
        "visitor": _identifier(subject.get("visitor"), "subject.visitor"),
        "host": _identifier(subject.get("host"), "subject.host"),
        "cohosts": _ids(subject.get("cohosts"), "subject.cohosts"),
        "status": _text(subject.get("status", "planned"), "subject.status", required=True),
    }


def check_request(subject: dict[str, Any], *, default_timezone: str) -> dict[str, Any]:
    """A request: a requester, a category, maybe an assigned manager and followers."""
    status = subject.get("status", "opened")
    if status not in ("opened", "resolved", "archived"):
        raise ValidationError("subject.status is opened, resolved or archived", "subject.status")
    return {
        **subject,
        "title": _text(subject.get("title"), "subject.title", required=False),
        "category": _text(subject.get("category"), "subject.category", required=False),
        "requester": _identifier(subject.get("requester"), "subject.requester"),
        "assigned_manager": _optional_id(
            subject.get("assigned_manager"), "subject.assigned_manager"
        ),
        "followers": _ids(subject.get("followers"), "subject.followers"),
        "status": status,
    }


def check_membership(subject: dict[str, Any], *, default_timezone: str) -> dict[str, Any]:
    """A membership: its member."""
    return {**subject, "member": _identifier(subject.get("member"), "subject.member")}


def check_resource(subject: dict[str, Any], *, default_timezone: str) -> dict[str, Any]:
    """A resource: a name, subscribers, and an optional maintenance window."""
    maintenance = subject.get("maintenance")
    if maintenance is not None:
        if not isinstance(maintenance, Mapping):
            raise ValidationError(
                "subject.maintenance is an object {start, end}", "subject.maintenance"
            )
        start = parse_instant(maintenance.get("start"), "subject.maintenance.start")
        end = parse_instant(maintenance.get("end"), "subject.maintenance.end")
        if end <= start:
            raise ValidationError(
                "subject.maintenance.end must come after its start", "subject.maintenance.end"
            )
        maintenance = {**maintenance, "start": start.isoformat(), "end": end.isoformat()}
    return {
        **subject,
        "subscribers": _ids(subject.get("subscribers"), "subject.subscribers"),
        "maintenance": maintenance,
    }


def check_payload(payload: object) -> dict[str, Any]:
    """The event's own data (a comment, the participant added...): an object."""
    if payload is None:
        return {}
    if not isinstance(payload, Mapping):
        raise ValidationError("payload is an object", "payload")
    return dict(payload)


SubjectCheck = Callable[..., dict[str, Any]]

#: Subject types with rules of their own; any other type passes through.
SUBJECT_CHECKS: dict[str, SubjectCheck] = {
    "booking": check_booking,
    "visit": check_visit,
    "request": check_request,
    "membership": check_membership,
    "resource": check_resource,
}


def check_subject(subject: object, *, default_timezone: str = "UTC") -> dict[str, Any]:
    """The subject's state as stored: checked, normalised, JSON-ready."""
    if not isinstance(subject, Mapping):
        raise ValidationError("subject is an object with a type and an id", "subject")
    subject_type = subject.get("type")
    if not isinstance(subject_type, str) or not SUBJECT_TYPE.match(subject_type):
        raise ValidationError("subject.type is a lower-case name like 'booking'", "subject.type")
    state = {**subject, "type": subject_type, "id": _identifier(subject.get("id"), "subject.id")}
    check = SUBJECT_CHECKS.get(subject_type)
    return check(state, default_timezone=default_timezone) if check else state
