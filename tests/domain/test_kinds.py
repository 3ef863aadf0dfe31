"""The catalogue: kinds found by the event that triggers them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from courrier.domain.kinds import (
    DEFAULT_CATALOGUE,
    Catalogue,
    NotificationKind,
    Timing,
    TimingMode,
)


def test_booking_created_triggers_the_confirmation_with_an_invitation() -> None:
    (kind,) = DEFAULT_CATALOGUE.for_event("booking.created")
    assert kind.name == "booking.confirmation"
    assert kind.recipients == ("booker",)
    assert kind.channels == ("email",)
    assert kind.attachments == ("ics.request",)
    assert kind.timing.mode is TimingMode.NOW


def test_an_unknown_event_type_triggers_nothing() -> None:
    assert DEFAULT_CATALOGUE.for_event("parcel.delivered") == ()


def test_a_kind_added_to_the_catalogue_is_found_by_each_of_its_triggers() -> None:
    reminder = NotificationKind(
        name="booking.reminder_1h",
        triggers=frozenset({"booking.created", "booking.modified"}),
        subject_type="booking",
        recipients=("booker", "participants"),
        timing=Timing.before("start", timedelta(hours=1)),
    )
    catalogue = Catalogue((*DEFAULT_CATALOGUE, reminder))
    assert [k.name for k in catalogue.for_event("booking.created")] == [
        "booking.confirmation",
        "booking.reminder_1h",
    ]
    assert catalogue.for_event("booking.modified") == (reminder,)
    assert [k.name for k in catalogue.without(["booking.confirmation"])] == ["booking.reminder_1h"]


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
