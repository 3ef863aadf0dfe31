"""The follow-up policy's rules, each refused with its own words and the field's name."""

from __future__ import annotations

from typing import Any

import pytest

from courrier.domain.followup import FollowUpPolicy, policy_from_json
from courrier.domain.kind_json import kind_from_json, kind_json
from courrier.domain.kinds import DEFAULT_CATALOGUE
from courrier.errors import ValidationError


def test_up_to_three_increasing_follow_ups_from_the_hour_are_accepted() -> None:
    policy = policy_from_json({"delays_minutes": [60, 1440, 4320], "cc_bcc": True})
    assert policy == FollowUpPolicy((60, 1440, 4320), cc_bcc=True)
    assert policy_from_json({"delays_minutes": [90]}) == FollowUpPolicy((90,))
    assert policy_from_json(None) is None


@pytest.mark.parametrize(
    ("delays", "words"),
    [
        ([60, 120, 180, 240], "at most 3 follow-ups"),
        ([120, 120], "each follow-up must come later than the one before"),
        ([60, 600, 300], "each follow-up must come later than the one before"),
        ([59], "the first follow-up must come at least 60 minutes after sending"),
        ([0, 60], "the first follow-up must come at least 60 minutes after sending"),
        ([], "at least one follow-up"),
    ],
)
def test_each_rule_is_named_when_broken(delays: list[int], words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        policy_from_json({"delays_minutes": delays})
    assert caught.value.field == "follow_up.delays_minutes"
    assert words in caught.value.message
    with pytest.raises(ValidationError):
        FollowUpPolicy(tuple(delays))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([60], "follow_up"),
        ({"delays_minutes": "60"}, "follow_up.delays_minutes"),
        ({"delays_minutes": [60.5]}, "follow_up.delays_minutes"),
        ({"delays_minutes": [True]}, "follow_up.delays_minutes"),
        ({"delays_minutes": [60], "cc_bcc": "yes"}, "follow_up.cc_bcc"),
        ({"delays_minutes": [60], "every": 2}, "follow_up.every"),
    ],
)
def test_a_policy_of_the_wrong_shape_names_its_field(data: Any, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        policy_from_json(data)
    assert caught.value.field == field


def test_a_kind_keeps_its_policy_through_json_and_defaults_have_none() -> None:
    assert all(kind.follow_up is None for kind in DEFAULT_CATALOGUE)
    base = DEFAULT_CATALOGUE.get("booking.confirmation")
    assert base is not None
    data = {**kind_json(base), "follow_up": {"delays_minutes": [120, 2880], "cc_bcc": False}}
    kind = kind_from_json(data)
    assert kind.follow_up == FollowUpPolicy((120, 2880))
    assert kind_json(kind)["follow_up"] == {"delays_minutes": [120, 2880], "cc_bcc": False}
