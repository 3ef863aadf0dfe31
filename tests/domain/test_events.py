"""Checking posted events: one test per kind of bad input, each naming its field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courrier.domain.events import check_envelope, check_subject
from courrier.errors import ValidationError


def booking(**changes: Any) -> dict[str, Any]:
    subject: dict[str, Any] = {
        "type": "booking",
        "id": "B-1001",
        "start": "2026-03-28T10:00:00+01:00",
        "end": "2026-03-28T12:00:00+01:00",
        "timezone": "Europe/Paris",
        "booker": "m-17",
        "resource": {"id": "F-GABC", "name": "Robin DR400"},
        "status": "confirmed",
        "paid": False,
        "participants": ["m-18"],
    }
    subject.update(changes)
    return {k: v for k, v in subject.items() if v is not ...}


def test_a_good_booking_is_kept_with_its_extra_fields() -> None:
    state = check_subject(booking(amount={"value": 120, "currency": "EUR"}))
    assert state["start"] == "2026-03-28T10:00:00+01:00"
    assert state["amount"] == {"value": 120, "currency": "EUR"}
    assert state["participants"] == ["m-18"]


def test_optional_booking_fields_get_their_defaults() -> None:
    subject = booking(timezone=..., resource=..., status=..., paid=..., participants=...)
    state = check_subject(subject, default_timezone="Europe/Brussels")
    assert state["timezone"] == "Europe/Brussels"
    assert (state["status"], state["paid"], state["participants"], state["resource"]) == (
        "confirmed",
        False,
        [],
        None,
    )


def test_a_utc_z_suffix_is_an_offset() -> None:
    state = check_subject(booking(start="2026-03-28T09:00:00Z", end="2026-03-28T11:00:00Z"))
    assert datetime.fromisoformat(state["start"]) == datetime(2026, 3, 28, 9, tzinfo=UTC)


BAD_SUBJECTS = [
    pytest.param("not an object", "subject", id="subject-not-object"),
    pytest.param(booking(type=...), "subject.type", id="missing-type"),
    pytest.param(booking(type="Booking!"), "subject.type", id="bad-type"),
    pytest.param(booking(id=...), "subject.id", id="missing-id"),
    pytest.param(booking(id=""), "subject.id", id="empty-id"),
    pytest.param(booking(id="x" * 201), "subject.id", id="id-too-long"),
    pytest.param(booking(start=...), "subject.start", id="missing-start"),
    pytest.param(booking(start="tomorrow at ten"), "subject.start", id="start-not-iso"),
    pytest.param(booking(start="2026-03-28T10:00:00"), "subject.start", id="start-without-offset"),
    pytest.param(booking(end=1234), "subject.end", id="end-not-string"),
    pytest.param(booking(end="2026-03-28T09:00:00+01:00"), "subject.end", id="end-before-start"),
    pytest.param(booking(end="2026-03-28T10:00:00+01:00"), "subject.end", id="end-equals-start"),
    pytest.param(booking(timezone="Mars/Olympus"), "subject.timezone", id="unknown-zone"),
    pytest.param(booking(timezone="../etc/passwd"), "subject.timezone", id="zone-path"),
    pytest.param(booking(timezone=3), "subject.timezone", id="zone-not-string"),
    pytest.param(booking(booker=...), "subject.booker", id="missing-booker"),
    pytest.param(booking(booker=["m-1"]), "subject.booker", id="booker-not-id"),
    pytest.param(booking(resource="plane"), "subject.resource", id="resource-not-object"),
    pytest.param(booking(resource={"id": "R1"}), "subject.resource.name", id="resource-no-name"),
    pytest.param(booking(status=""), "subject.status", id="empty-status"),
    pytest.param(booking(paid="yes"), "subject.paid", id="paid-not-bool"),
    pytest.param(booking(participants="m-1"), "subject.participants", id="participants-not-list"),
    pytest.param(
        booking(participants=["m-1", None]), "subject.participants.1", id="bad-participant"
    ),
]


@pytest.mark.parametrize(("subject", "field"), BAD_SUBJECTS)
def test_a_bad_subject_is_refused_naming_the_field(subject: Any, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_subject(subject)
    assert caught.value.field == field
    assert caught.value.message


def test_an_unknown_subject_type_passes_through_untouched() -> None:
    subject = {"type": "parcel", "id": 42, "weight": "2kg", "start": "whenever"}
    assert check_subject(subject) == {
        "type": "parcel",
        "id": "42",
        "weight": "2kg",
        "start": "whenever",
    }


WHEN = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event_type", "key", "occurred_at", "field"),
    [
        pytest.param("created", "k", WHEN, "type", id="type-without-dot"),
        pytest.param("Booking.Created", "k", WHEN, "type", id="type-upper-case"),
        pytest.param(None, "k", WHEN, "type", id="type-missing"),
        pytest.param("booking.created", "", WHEN, "idempotency_key", id="key-empty"),
        pytest.param("booking.created", "  ", WHEN, "idempotency_key", id="key-blank"),
        pytest.param("booking.created", "k" * 201, WHEN, "idempotency_key", id="key-too-long"),
        pytest.param(
            "booking.created", "k", datetime(2026, 3, 1), "occurred_at", id="occurred-naive"
        ),
    ],
)
def test_a_bad_envelope_is_refused_naming_the_field(
    event_type: Any, key: Any, occurred_at: Any, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        check_envelope(event_type, key, occurred_at)
    assert caught.value.field == field


def test_a_good_envelope_passes() -> None:
    check_envelope("booking.created", "evt-1", WHEN)
    check_envelope("visit.check_in", "evt-2", WHEN)


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=30)),
    st.sampled_from(["Europe/Paris", "America/St_Johns", "Asia/Kathmandu", "Australia/Lord_Howe"]),
)
def test_any_booking_with_offsets_keeps_its_instants(
    local: datetime, length: timedelta, zone: str
) -> None:
    start = local.replace(tzinfo=ZoneInfo(zone))
    end = start + length
    state = check_subject(booking(start=start.isoformat(), end=end.isoformat(), timezone=zone))
    # Compared in UTC: a wall time in a DST gap never equals one of another zone (PEP 495).
    assert datetime.fromisoformat(state["start"]).astimezone(UTC) == start.astimezone(UTC)
    assert datetime.fromisoformat(state["end"]).astimezone(UTC) == end.astimezone(UTC)


@pytest.mark.parametrize(
    ("subject", "field"),
    [
        (
            {
                "type": "visit",
                "id": "V-1",
                "start": "2026-03-02T10:00:00+01:00",
                "end": "2026-03-02T11:00:00+01:00",
                "host": "s-1",
            },
            "subject.visitor",
        ),
        (
            {"type": "request", "id": "R-1", "requester": "m-1", "status": "closed"},
            "subject.status",
        ),
        (
            {"type": "request", "id": "R-1", "requester": "m-1", "followers": "m-2"},
            "subject.followers",
        ),
        ({"type": "membership", "id": "M-1"}, "subject.member"),
        (
            {
                "type": "resource",
                "id": "F-1",
                "maintenance": {"start": "2026-03-02T10:00:00Z", "end": "2026-03-01T10:00:00Z"},
            },
            "subject.maintenance.end",
        ),
    ],
    ids=["visit-without-visitor", "request-status", "followers-not-a-list", "member", "window"],
)
def test_each_subject_type_is_checked_naming_the_field(subject: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_subject(subject)
    assert caught.value.field == field


def test_a_request_gets_its_defaults() -> None:
    state = check_subject({"type": "request", "id": "R-1", "requester": "m-1"})
    assert state["status"] == "opened"
    assert state["followers"] == []
    assert state["assigned_manager"] is None
