"""Whatever JSON arrives, the API answers in the error shape and never with a 500."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import Caller, booking

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
CONTACT_FIELDS = [
    "name",
    "email",
    "other_emails",
    "phone",
    "locale",
    "timezone",
    "roles",
    "staff_profiles",
]
SUBJECT_FIELDS = [
    "id",
    "type",
    "start",
    "end",
    "timezone",
    "booker",
    "resource",
    "participants",
    "paid",
]
EVENT_FIELDS = ["type", "idempotency_key", "occurred_at"]
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_handled(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()["error"]) >= {"code", "message"}


@FUZZ
@given(body=st.dictionaries(st.sampled_from(CONTACT_FIELDS), JSON, max_size=5))
def test_any_contact_body_is_answered_without_a_500(alice: Caller, body: dict[str, Any]) -> None:
    assert_handled(alice.put("/v1/contacts/m-1", json=body))


@FUZZ
@given(
    envelope=st.dictionaries(st.sampled_from(EVENT_FIELDS), JSON, max_size=2),
    subject=st.dictionaries(st.sampled_from(SUBJECT_FIELDS), JSON, max_size=4),
)
def test_any_event_body_is_answered_without_a_500(
    alice: Caller, envelope: dict[str, Any], subject: dict[str, Any]
) -> None:
    event = booking()
    event.update(envelope)
    event["subject"] = {**event["subject"], **subject}
    assert_handled(alice.post("/v1/events", json=event))


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["limit", "since", "until", "status", "q", "cursor", "contact"]),
        st.text(max_size=40),
        max_size=3,
    )
)
def test_any_history_query_is_answered_without_a_500(alice: Caller, params: dict[str, str]) -> None:
    assert_handled(alice.get("/v1/messages", params=params))
