"""Sample data for every kind: what the preview shows and what templates are checked against.

A template saved by a tenant is rendered once against these values before
it is accepted (:mod:`courrier.render.template_check`), so a misspelt
variable is refused at save time, not when a mail is due. The preview
endpoint renders a kind with them, merged with any data the caller gives.

The states look like what the intake stores: JSON, dates as ISO 8601 text.
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from typing import Any

#: a subject type's name in the first part of its kinds' names (``member.*`` are about a membership)
SUBJECT_TYPES = {
    "booking": "booking",
    "visit": "visit",
    "request": "request",
    "member": "membership",
    "resource": "resource",
}

_BOOKING = {
    "type": "booking",
    "id": "B-1042",
    "start": "2026-03-28T09:00:00+00:00",
    "end": "2026-03-28T10:30:00+00:00",
    "timezone": "Europe/Paris",
    "booker": "M-007",
    "booker_name": "Camille Durand",
    "participants": ["M-012"],
    "resource": {"id": "R-3", "name": "Court 3"},
    "status": "confirmed",
    "paid": False,
    "amount": "24.00",
    "currency": "EUR",
    "services": ["Racket hire"],
    "manager": "S-001",
}
_STATES: dict[str, dict[str, Any]] = {
    "booking": _BOOKING,
    "visit": {
        "type": "visit",
        "id": "V-301",
        "start": "2026-03-28T13:00:00+00:00",
        "end": "2026-03-28T14:00:00+00:00",
        "timezone": "Europe/Paris",
        "visitor": "G-55",
        "visitor_name": "Jordan Lee",
        "host": "S-004",
        "host_name": "Alex Martin",
        "cohosts": ["S-005"],
    },
    "request": {
        "type": "request",
        "id": "Q-88",
        "title": "Leaking shower in the changing room",
        "category": "maintenance",
        "requester": "M-007",
        "assigned_manager": "S-002",
        "followers": ["M-012"],
        "status": "opened",
        "description": "Water runs onto the floor after each use.",
    },
    "membership": {
        "type": "membership",
        "id": "MS-7",
        "member": "M-007",
        "member_name": "Camille Durand",
        "validity": {"type": "medical", "label": "Medical certificate", "expires_on": "2026-04-15"},
        "balance": "4.50",
        "threshold": "10.00",
        "currency": "EUR",
        "timezone": "Europe/Paris",
    },
    "resource": {
        "type": "resource",
        "id": "R-3",
        "name": "Court 3",
        "timezone": "Europe/Paris",
        "maintenance": {"start": "2026-03-30T06:00:00+00:00", "end": "2026-03-30T16:00:00+00:00"},
        "subscribers": ["M-012"],
    },
}
#: the state before the change, for kinds that show old and new values
_PREVIOUS = {
    "booking.modified": {
        **_BOOKING,
        "start": "2026-03-27T16:00:00+00:00",
        "end": "2026-03-27T17:30:00+00:00",
        "resource": {"id": "R-2", "name": "Court 2"},
    },
    "visit.modified": {
        **_STATES["visit"],
        "start": "2026-03-27T08:00:00+00:00",
        "end": "2026-03-27T09:00:00+00:00",
    },
}
#: names of the contacts the samples mention, as the composer finds them
_PEOPLE = {
    "M-007": "Camille Durand",
    "M-012": "Noah Petit",
    "S-001": "Alex Martin",
    "S-002": "Sam Rivera",
    "S-004": "Alex Martin",
    "G-55": "Jordan Lee",
}
_COMMENT = {"author": "S-002", "author_name": "Sam Rivera", "text": "A plumber comes on Monday."}
_PAYLOADS: dict[str, dict[str, Any]] = {
    "booking.cancelled": {"reason": "Cancelled by the member."},
    "booking.rejected": {"reason": "The court is reserved for a tournament."},
    "booking.participant_added": {"participant": "M-012"},
    "booking.services_added": {"services": ["Racket hire", "Ball machine"]},
    "booking.approval_needed": {"approval_url": "https://club.example.org/approvals/B-1042"},
    "booking.staff_digest": {
        "day": "2026-03-28",
        "bookings": [
            _BOOKING,
            {
                **_BOOKING,
                "id": "B-1043",
                "start": "2026-03-28T15:00:00+00:00",
                "end": "2026-03-28T16:00:00+00:00",
                "booker_name": "Noah Petit",
            },
        ],
    },
    "request.comment_public": {**_COMMENT, "visibility": "public"},
    "request.comment_internal": {**_COMMENT, "visibility": "internal", "text": "Quote: 180 EUR."},
    "request.status_changed": {"status": "resolved"},
    "member.password_reset": {"link": "https://club.example.org/reset/3f9c2a"},
    "visit.cancelled": {"reason": "The host is away."},
}


def subject_type_of(kind: str) -> str:
    """The subject type a kind of the default catalogue is about (its name's first part)."""
    prefix = kind.partition(".")[0]
    return SUBJECT_TYPES.get(prefix, prefix)


def sample_state(subject_type: str) -> dict[str, Any]:
    """A subject of that type as the intake stores it (an empty-ish one for unknown types)."""
    state = _STATES.get(subject_type)
    if state is None:
        return {"type": subject_type, "id": "X-1", "timezone": "Europe/Paris"}
    return deepcopy(state)


def sample_context(
    kind: str,
    *,
    subject_type: str | None = None,
    locale: str = "en",
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The context a message of ``kind`` gets, with sample values; ``data`` replaces parts.

    ``data`` may hold ``subject``, ``previous``, ``payload``, ``recipient``
    and ``tenant``: mappings merged over the samples (one level deep).
    """
    chosen = subject_type or subject_type_of(kind)
    subject = sample_state(chosen)
    if chosen == "request" and kind == "request.status_changed":
        subject["status"] = "resolved"
    previous = deepcopy(_PREVIOUS.get(kind))
    context: dict[str, Any] = {
        "tenant": {
            "name": "Club des Tilleuls",
            "from_email": "club@example.org",
            "from_name": "Club des Tilleuls",
            "reply_to": "office@example.org",
            "timezone": "Europe/Paris",
            "locale": "fr",
            "address": "12 allée des Tilleuls, 35000 Rennes",
            "logo_url": "https://club.example.org/logo.png",
        },
        "recipient": {
            "contact": "M-007",
            "name": "Camille Durand",
            "email": "camille@example.com",
            "locale": locale,
            "timezone": "Europe/Paris",
        },
        "subject": subject,
        "previous": previous,
        "changes": changes(previous, subject) if previous else [],
        "payload": deepcopy(_PAYLOADS.get(kind, {})),
        "people": dict(_PEOPLE),
        "event": {"type": kind, "occurred_at": "2026-03-20T10:00:00+00:00"},
        "preference_url": "https://club.example.org/preferences/sample-token",
    }
    for key, value in (data or {}).items():
        if key in ("subject", "previous", "payload", "recipient", "tenant") and isinstance(
            value, Mapping
        ):
            context[key] = {**(context.get(key) or {}), **value}
    if data and ("previous" in data or "subject" in data) and context["previous"]:
        context["changes"] = changes(context["previous"], context["subject"])
    return context


def changes(previous: Mapping[str, Any], current: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The top-level fields whose value differs, each ``{field, old, new}``, sorted by field."""
    fields = sorted(set(previous) | set(current))
    return [
        {"field": f, "old": previous.get(f), "new": current.get(f)}
        for f in fields
        if previous.get(f) != current.get(f)
    ]
