"""Planning is pure: the same inputs give the same messages, each under a unique send key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from courrier.domain.kinds import DEFAULT_CATALOGUE, NotificationKind, Timing
from courrier.domain.planning import (
    MAX_SEND_KEY,
    EventFacts,
    Recipient,
    direct_send_key,
    due_time,
    plan,
    recipient_ids,
    send_key,
    send_key_part,
)
from courrier.engine.followups import follow_up_key

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
KINDS = tuple(DEFAULT_CATALOGUE)
ADA = Recipient(contact="m-17", name="Ada", email="ada@example.com")
STATE: dict[str, Any] = {
    "type": "booking",
    "id": "B-1",
    "start": "2026-03-28T10:00:00+01:00",
    "booker": "m-17",
    "participants": ["m-18", "m-17"],
}


def created(subject_id: str = "B-1", version: int = 1) -> EventFacts:
    return EventFacts("booking.created", NOW, "booking", subject_id, version)


def test_a_created_booking_plans_one_confirmation_to_the_booker_now() -> None:
    (message,) = plan(KINDS, created(), STATE, {"booker": [ADA]}, NOW)
    assert (message.kind.name, message.channel, message.address) == (
        "booking.confirmation",
        "email",
        "ada@example.com",
    )
    assert message.due_at == NOW
    assert message.send_key == "booking:B-1:booking.confirmation:m-17:email:1"


def test_an_unknown_event_or_another_subject_type_plans_nothing() -> None:
    other = EventFacts("parcel.delivered", NOW, "parcel", "P-1")
    assert plan(KINDS, other, STATE, {"booker": [ADA]}, NOW) == []
    wrong_subject = EventFacts("booking.created", NOW, "visit", "V-1")
    assert plan(KINDS, wrong_subject, STATE, {"booker": [ADA]}, NOW) == []


def test_a_recipient_without_an_address_on_the_channel_is_skipped() -> None:
    nobody = Recipient(contact="m-9", email=None, phone="+33600000000")
    assert plan(KINDS, created(), STATE, {"booker": [nobody]}, NOW) == []


def test_a_person_in_two_roles_gets_one_message() -> None:
    kind = NotificationKind(
        "booking.notice", frozenset({"booking.created"}), "booking", ("booker", "participants")
    )
    messages = plan([kind], created(), STATE, {"booker": [ADA], "participants": [ADA]}, NOW)
    assert len(messages) == 1


def test_a_repeated_confirmation_keeps_its_key_but_a_versioned_notice_does_not() -> None:
    first = plan(KINDS, created(version=1), STATE, {"booker": [ADA]}, NOW)
    again = plan(KINDS, created(version=2), STATE, {"booker": [ADA]}, NOW)
    assert [m.send_key for m in first] == [m.send_key for m in again]
    notice = NotificationKind(
        "booking.modified",
        frozenset({"booking.created"}),
        "booking",
        ("booker",),
        once_per_subject=False,
    )
    one = plan([notice], created(version=1), STATE, {"booker": [ADA]}, NOW)
    two = plan([notice], created(version=2), STATE, {"booker": [ADA]}, NOW)
    assert one[0].send_key != two[0].send_key


def test_roles_name_contacts_from_the_subject_state() -> None:
    assert recipient_ids("booker", STATE) == ["m-17"]
    assert recipient_ids("participants", STATE) == ["m-18", "m-17"]
    assert recipient_ids("followers", STATE) == []


key_part = st.text(min_size=1, max_size=30)
key_tuple = st.tuples(key_part, key_part, key_part, key_part, key_part, key_part)


@given(key_tuple, key_tuple)
def test_different_sends_never_share_a_key(a: tuple[str, ...], b: tuple[str, ...]) -> None:
    assert (send_key(*a) == send_key(*b)) == (a == b)


@given(st.tuples(*(st.text(min_size=1, max_size=300) for _ in range(6))))
def test_a_send_key_fits_its_column(parts: tuple[str, ...]) -> None:
    assert len(send_key(*parts)) <= MAX_SEND_KEY


@given(st.text(min_size=1, max_size=40), st.sampled_from(sorted({k.subject_type for k in KINDS})))
def test_every_planned_key_starts_with_its_subject(subject_id: str, subject_type: str) -> None:
    """Intake relies on it: a subject new to the database cannot have a key taken yet."""
    state = {**STATE, "type": subject_type, "id": subject_id, "end": "2026-03-28T12:00:00+01:00"}
    head = f"{send_key_part(subject_type)}:{send_key_part(subject_id)}:"
    people = {role: [ADA] for k in KINDS for role in k.recipients}
    keys = [
        message.send_key
        for event_type in sorted({t for k in KINDS for t in k.triggers})
        for message in plan(
            KINDS, EventFacts(event_type, NOW, subject_type, subject_id), state, people, NOW
        )
    ]
    assert keys and all(key.startswith(head) for key in keys)


#: idempotency keys as clients choose them, separators and escapes included
idempotency_key = st.text(alphabet=st.sampled_from("ab:%3A5-#"), min_size=1, max_size=12) | st.text(
    min_size=1, max_size=200
)


@given(idempotency_key, idempotency_key)
def test_one_off_messages_share_a_key_only_when_their_idempotency_keys_match(
    a: str, b: str
) -> None:
    assert (direct_send_key(a) == direct_send_key(b)) == (a == b)
    assert len(direct_send_key(a)) <= MAX_SEND_KEY


@given(idempotency_key, idempotency_key, st.integers(min_value=1, max_value=9))
def test_a_one_off_message_never_takes_a_follow_ups_key(a: str, b: str, n: int) -> None:
    """``renewal:follow-up:1`` is a key of its own, not the first follow-up of ``renewal``."""
    assert direct_send_key(a) != follow_up_key(direct_send_key(b), n)


def test_the_key_that_named_a_follow_up_is_a_message_of_its_own() -> None:
    assert direct_send_key("renewal") == "direct:renewal"
    assert direct_send_key("renewal:follow-up:1") == "direct:renewal%3Afollow-up%3A1"
    assert follow_up_key(direct_send_key("renewal"), 1) == "direct:renewal:follow-up:1"


@given(idempotency_key, key_tuple)
def test_a_one_off_message_never_takes_a_planned_messages_key(
    key: str, parts: tuple[str, ...]
) -> None:
    """Not even one planned for a subject of type ``direct``: intake counts on a subject new
    to the database having none of its keys taken yet."""
    assert direct_send_key(key) != send_key("direct", *parts[1:])
    assert direct_send_key(key) != follow_up_key(send_key("direct", *parts[1:]), 1)


contact_ids = st.lists(st.from_regex(r"m-[0-9]{1,4}", fullmatch=True), min_size=1, max_size=20)


@given(contact_ids, st.from_regex(r"B-[0-9]{1,5}", fullmatch=True))
def test_planning_twice_gives_the_same_messages_under_unique_keys(
    ids: list[str], subject_id: str
) -> None:
    people = [Recipient(contact=i, email=f"{i}@example.com") for i in ids]
    kind = NotificationKind(
        "booking.notice", frozenset({"booking.created"}), "booking", ("participants",)
    )
    first = plan([kind], created(subject_id), STATE, {"participants": people}, NOW)
    second = plan([kind], created(subject_id), STATE, {"participants": people}, NOW)
    assert first == second
    keys = [m.send_key for m in first]
    assert len(keys) == len(set(keys)) == len(set(ids))


instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30))


@given(instants, durations)
def test_a_delay_after_the_event_counts_from_when_it_happened(
    occurred: datetime, delay: timedelta
) -> None:
    event = EventFacts("booking.created", occurred, "booking", "B-1")
    timed = due_time(Timing.after_event(delay), event, STATE, NOW)
    assert timed is not None and timed[0] == occurred + delay


@given(instants, durations, st.sampled_from(["Europe/Paris", "America/New_York", "Asia/Kolkata"]))
def test_a_reminder_before_a_date_counts_back_from_it(
    start: datetime, offset: timedelta, zone: str
) -> None:
    state = {"start": start.astimezone(ZoneInfo(zone)).isoformat()}
    timed = due_time(Timing.before("start", offset), created(), state, NOW)
    if start <= NOW:
        assert timed is None
        return
    assert timed is not None
    due, occurrence = timed
    assert due == start - offset
    assert datetime.fromisoformat(occurrence) == start


def test_a_reminder_needing_lead_time_is_dropped_for_a_late_booking() -> None:
    timing = Timing.before("start", timedelta(hours=24), min_lead=timedelta(hours=48))
    soon = {"start": (NOW + timedelta(hours=30)).isoformat()}
    later = {"start": (NOW + timedelta(hours=50)).isoformat()}
    assert due_time(timing, created(), soon, NOW) is None
    assert due_time(timing, created(), later, NOW) == (
        NOW + timedelta(hours=26),
        (NOW + timedelta(hours=50)).isoformat(),
    )
