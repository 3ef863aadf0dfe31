"""The catalogue: kinds found by the event that triggers them."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from courrier.domain.kind_json import kind_from_json, kind_json
from courrier.domain.kinds import (
    DEFAULT_CATALOGUE,
    Catalogue,
    NotificationKind,
    TimeZoneChoice,
    Timing,
    TimingMode,
)
from courrier.domain.planning import EventFacts, Recipient, plan
from courrier.errors import ValidationError


def test_booking_created_triggers_the_confirmation_with_an_invitation() -> None:
    kind = DEFAULT_CATALOGUE.get("booking.confirmation")
    assert kind is not None
    assert kind in DEFAULT_CATALOGUE.for_event("booking.created")
    assert kind.recipients == ("booker",)
    assert kind.channels == ("email",)
    assert kind.attachments == ("ics.request",)
    assert kind.timing.mode is TimingMode.NOW


def test_booking_created_plans_confirmation_notices_payment_reminder_and_reminders() -> None:
    planned = {k.name for k in DEFAULT_CATALOGUE.for_subject_event("booking.created", "booking")}
    assert planned == {
        "booking.confirmation",
        "booking.manager_notice",
        "booking.staff_copy",
        "booking.payment_reminder",
        "booking.reminder_24h",
        "booking.reminder_1h",
        "booking.reminder_30min",
        "booking.checkin_notice",
    }


def test_a_cancellation_cancels_reminders_and_plans_none() -> None:
    cancelled = {k.name for k in DEFAULT_CATALOGUE.cancelled_by("booking.cancelled", "booking")}
    assert {"booking.reminder_1h", "booking.payment_reminder"} <= cancelled
    planned = {k.name for k in DEFAULT_CATALOGUE.for_subject_event("booking.cancelled", "booking")}
    assert planned == {"booking.cancelled"}


def test_a_payment_drops_only_the_payment_reminder() -> None:
    dropped = DEFAULT_CATALOGUE.cancelled_by("booking.paid", "booking")
    assert [k.name for k in dropped] == ["booking.payment_reminder"]


def test_every_event_of_the_design_triggers_its_kind() -> None:
    expected = {
        "booking.modified": "booking.modified",
        "booking.validated": "booking.validated",
        "booking.approval_requested": "booking.approval_needed",
        "booking.approved": "booking.approved",
        "booking.rejected": "booking.rejected",
        "booking.participant_added": "booking.participant_added",
        "booking.services_added": "booking.services_added",
        "visit.created": "visit.created",
        "visit.modified": "visit.modified",
        "visit.cancelled": "visit.cancelled",
        "visit.checked_in": "visit.checkin",
        "request.created": "request.new",
        "request.assigned": "request.assigned",
        "request.follower_added": "request.follower_added",
        "request.status_changed": "request.status_changed",
        "member.validity_expiring": "member.validity_expiring",
        "member.balance_low": "member.balance_low",
        "member.password_reset": "member.password_reset",
        "resource.maintenance_started": "resource.maintenance_start",
        "resource.maintenance_ended": "resource.maintenance_end",
    }
    for event_type, kind in expected.items():
        assert kind in [k.name for k in DEFAULT_CATALOGUE.for_event(event_type)], event_type
    comments = {k.name for k in DEFAULT_CATALOGUE.for_event("request.commented")}
    assert comments == {"request.comment_public", "request.comment_internal"}


def test_a_password_reset_cannot_be_switched_off_and_leaves_first() -> None:
    reset = DEFAULT_CATALOGUE.get("member.password_reset")
    assert reset is not None and not reset.preference_optional
    assert reset.priority == max(k.priority for k in DEFAULT_CATALOGUE)


def test_an_unknown_event_type_triggers_nothing() -> None:
    assert DEFAULT_CATALOGUE.for_event("parcel.delivered") == ()


def test_a_kind_added_to_the_catalogue_is_found_by_each_of_its_triggers() -> None:
    audit = NotificationKind(
        name="booking.audit",
        triggers=frozenset({"booking.created", "booking.audited"}),
        subject_type="booking",
        recipients=("manager",),
    )
    catalogue = Catalogue((*DEFAULT_CATALOGUE, audit))
    assert audit in catalogue.for_event("booking.created")
    assert catalogue.for_event("booking.audited") == (audit,)
    assert audit not in catalogue.without(["booking.audit"])


def test_two_kinds_with_one_name_are_refused() -> None:
    kind = DEFAULT_CATALOGUE.get("booking.confirmation")
    assert kind is not None
    with pytest.raises(ValueError, match="repeat"):
        Catalogue((kind, kind))


def test_a_timing_before_a_date_must_name_the_date() -> None:
    with pytest.raises(ValueError, match="date field"):
        Timing(TimingMode.BEFORE_DATE, offset=timedelta(hours=1))
    with pytest.raises(ValueError, match="positive"):
        Timing.after_event(timedelta(minutes=-10))


def test_every_default_kind_reads_back_from_its_json_form() -> None:
    for kind in DEFAULT_CATALOGUE:
        assert kind_from_json(kind_json(kind)) == kind


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timing": {"mode": "before_date"}}, "timing"),
        ({"timing": {"mode": "daily"}}, "timing"),
        ({"timing": {"mode": "now", "zone": "moon"}}, "timing.zone"),
        ({"timing": {"mode": "before_date", "date_field": "Start!"}}, "timing.date_field"),
        ({"recipients": ["booking_copy:weekly"]}, "recipients"),
        ({"exclude": ["event."]}, "exclude"),
        ({"attachments": ["pdf.invoice"]}, "attachments"),
        ({"conditions": [{"field": "status", "op": "in", "value": "confirmed"}]}, "conditions.0"),
        ({"replan": "yes"}, "replan"),
        ({"name": "Reminder"}, "name"),
    ],
)
def test_a_kind_that_cannot_work_is_refused_naming_the_field(
    change: dict[str, object], field: str
) -> None:
    kind = DEFAULT_CATALOGUE.get("booking.reminder_1h")
    assert kind is not None
    with pytest.raises(ValidationError) as caught:
        kind_from_json({**kind_json(kind), **change})
    assert caught.value.field == field


def test_a_kind_timed_on_the_recipients_clock_uses_their_zone() -> None:
    kind = NotificationKind(
        name="booking.evening_before",
        triggers=frozenset({"booking.created"}),
        subject_type="booking",
        recipients=("booker",),
        timing=Timing.before("start", days=1, at=time(18, 0), zone=TimeZoneChoice.RECIPIENT),
    )
    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    event = EventFacts("booking.created", now, "booking", "B-1")
    state = {"start": "2026-03-10T10:00:00+01:00", "timezone": "Europe/Paris"}
    in_tokyo = Recipient("m-1", email="a@example.org", timezone="Asia/Tokyo")
    elsewhere = Recipient("m-2", email="b@example.org")
    planned = plan([kind], event, state, {"booker": [in_tokyo, elsewhere]}, now)
    due = {m.recipient.contact: m.due_at for m in planned}
    assert due["m-1"] == datetime(2026, 3, 9, 9, 0, tzinfo=UTC)  # 18:00 in Tokyo on the 9th
    assert due["m-2"] == datetime(2026, 3, 9, 17, 0, tzinfo=UTC)  # no zone: the venue's 18:00
