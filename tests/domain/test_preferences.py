"""Which rule decides whether a contact hears about a kind on a channel."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from courrier.domain.kinds import NotificationKind
from courrier.domain.preferences import (
    ANY,
    Preference,
    SetBy,
    deciding_rule,
    effective_switches,
    for_staff_only,
    is_switched_off,
    suppression_reason,
)

REMINDER = NotificationKind(
    name="booking.reminder_1h",
    triggers=frozenset({"booking.created"}),
    subject_type="booking",
    recipients=("booker",),
    channels=("email", "sms"),
)
RESET = NotificationKind(
    name="member.password_reset",
    triggers=frozenset({"member.password_reset"}),
    subject_type="membership",
    recipients=("member",),
    priority=100,
    preference_optional=False,
)


def test_no_rule_means_the_kind_is_on() -> None:
    assert not is_switched_off([], REMINDER, "email")
    assert suppression_reason([], REMINDER, "email") is None


def test_the_most_specific_rule_decides() -> None:
    rules = [
        Preference(ANY, ANY, enabled=False),
        Preference(ANY, "email", enabled=True),
        Preference(REMINDER.name, ANY, enabled=False),
        Preference(REMINDER.name, "sms", enabled=True),
    ]
    assert deciding_rule(rules, REMINDER.name, "sms") == rules[3]
    assert deciding_rule(rules, REMINDER.name, "email") == rules[2]
    assert deciding_rule(rules, "booking.cancelled", "email") == rules[1]
    assert deciding_rule(rules, "booking.cancelled", "push") == rules[0]
    assert is_switched_off(rules, REMINDER, "email")
    assert not is_switched_off(rules, REMINDER, "sms")


def test_a_kind_that_cannot_be_switched_off_never_is() -> None:
    rules = [Preference(ANY, ANY, enabled=False), Preference(RESET.name, "email", enabled=False)]
    assert not is_switched_off(rules, RESET, "email")
    assert effective_switches(rules, [RESET, REMINDER]) == {
        (RESET.name, "email"): True,
        (REMINDER.name, "email"): False,
        (REMINDER.name, "sms"): False,
    }


def test_the_reason_says_who_switched_what_off() -> None:
    by_contact = [Preference(REMINDER.name, ANY, enabled=False, set_by=SetBy.CONTACT)]
    by_staff = [Preference(ANY, "email", enabled=False, set_by=SetBy.STAFF)]
    assert suppression_reason(by_contact, REMINDER, "email") == (
        "switched off by the contact on the preference page (booking.reminder_1h, every channel)"
    )
    assert suppression_reason(by_staff, REMINDER, "email") == (
        "switched off by staff (every kind, email)"
    )


def test_kinds_for_staff_only_are_told_apart() -> None:
    def kind(*roles: str) -> NotificationKind:
        return NotificationKind("x.y", frozenset(), "booking", roles)

    assert for_staff_only(kind("manager"))
    assert for_staff_only(kind("booking_copy:digest"))
    assert for_staff_only(kind("category_managers", "default_manager"))
    assert not for_staff_only(kind("requester", "assigned_manager"))
    assert not for_staff_only(REMINDER)


KINDS = st.sampled_from(["booking.reminder_1h", "booking.cancelled", ANY])
CHANNELS = st.sampled_from(["email", "sms", ANY])
RULES = st.lists(
    st.builds(Preference, KINDS, CHANNELS, st.booleans(), st.sampled_from(list(SetBy))),
    max_size=8,
    unique_by=lambda rule: rule.key,
)


@given(rules=RULES, channel=st.sampled_from(["email", "sms"]))
def test_a_rule_naming_the_kind_always_beats_one_for_every_kind(
    rules: list[Preference], channel: str
) -> None:
    """Whatever the other rules, the decision comes from the most specific one present."""
    decided = deciding_rule(rules, REMINDER.name, channel)
    matching = [r for r in rules if r.kind in (REMINDER.name, ANY) and r.channel in (channel, ANY)]
    if not matching:
        assert decided is None
        assert not is_switched_off(rules, REMINDER, channel)
        return
    best = max(matching, key=lambda r: (r.kind != ANY, r.channel != ANY))
    assert decided == best
    assert is_switched_off(rules, REMINDER, channel) is not best.enabled
    assert not is_switched_off(rules, RESET, channel)
