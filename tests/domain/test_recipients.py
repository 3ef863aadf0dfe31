"""Roles resolved to contacts, and the conditions kinds put on a subject."""

from __future__ import annotations

import pytest

from courrier.domain.conditions import Condition, failed_condition
from courrier.domain.recipients import Directory, check_role, recipients_of, role_contacts

REQUEST = {
    "type": "request",
    "id": "R-1",
    "category": "plumbing",
    "requester": "m-1",
    "assigned_manager": "s-1",
    "followers": ["m-2", "s-1"],
}
STAFF = Directory(
    staff_by_profile={
        "category:plumbing": ["s-2"],
        "default_manager": ["s-9"],
        "category:x": ["s-3"],
    },
    booking_copy={"each": ["s-4"], "digest": ["s-5"]},
)


def test_subject_fields_name_one_contact_or_a_list() -> None:
    assert role_contacts("requester", REQUEST) == ["m-1"]
    assert role_contacts("followers", REQUEST) == ["m-2", "s-1"]
    assert role_contacts("host", REQUEST) == []


def test_category_managers_follow_the_subjects_category() -> None:
    assert role_contacts("category_managers", REQUEST, directory=STAFF) == ["s-2"]
    assert role_contacts("default_manager", REQUEST, directory=STAFF) == ["s-9"]
    assert role_contacts("category_managers", {"id": "R-2"}, directory=STAFF) == []


def test_managers_are_the_assigned_one_and_the_category_managers() -> None:
    assert role_contacts("managers", REQUEST, directory=STAFF) == ["s-1", "s-2"]


def test_booking_copies_by_mode_and_the_events_own_people() -> None:
    assert role_contacts("booking_copy:each", {}, directory=STAFF) == ["s-4"]
    assert role_contacts("booking_copy:digest", {}, directory=STAFF) == ["s-5"]
    assert role_contacts("event.participant", {}, {"participant": "m-7"}) == ["m-7"]


def test_the_author_of_a_comment_is_left_out() -> None:
    found = recipients_of(
        ("requester", "assigned_manager", "followers"),
        ("event.author",),
        REQUEST,
        {"author": "s-1"},
    )
    assert found == {"requester": ["m-1"], "assigned_manager": [], "followers": ["m-2"]}


@pytest.mark.parametrize(
    ("role", "ok"),
    [
        ("booker", True),
        ("staff:validities:all", True),
        ("booking_copy:weekly", False),
        ("Bad Role", False),
    ],
)
def test_role_names_are_checked(role: str, ok: bool) -> None:
    assert (check_role(role) is None) is ok


def test_conditions_on_the_subject_and_the_event() -> None:
    unpaid = Condition("paid", "eq", False)
    public = Condition("event.visibility", "eq", "public")
    assert failed_condition((unpaid,), {"paid": False}) is None
    assert failed_condition((unpaid,), {"paid": True}) == "condition no longer holds: paid eq False"
    assert failed_condition((public,), {}, {"visibility": "internal"}) is not None
    assert failed_condition((public,), {}, {"visibility": "internal"}, subject_only=True) is None
    assert Condition("resource.id", "in", ["F-1"]).holds({"resource": {"id": "F-1"}})
    assert Condition("checkin_at", "absent").holds({"checkin_at": None})


def test_a_bad_condition_is_refused() -> None:
    with pytest.raises(ValueError, match="operator"):
        Condition("paid", "is", True)
    with pytest.raises(ValueError, match="list"):
        Condition("status", "in", "confirmed")
