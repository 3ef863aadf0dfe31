"""Preferences in the database: rules replaced as a whole, and the reasons they stop messages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from courrier.domain.kinds import NotificationKind
from courrier.domain.preferences import ANY, Preference, SetBy
from courrier.store.contacts import ContactData, upsert_contact
from courrier.store.preferences import (
    preference_rows,
    replace_rules,
    suppress_switched_off,
    suppressed_reason,
    suppressed_reasons,
)
from courrier.store.tenants import Tenant
from tests.store.conftest import NOW

REMINDER = NotificationKind(
    name="booking.reminder_1h",
    triggers=frozenset(),
    subject_type="booking",
    recipients=("booker",),
)
RESET = NotificationKind(
    name="member.password_reset",
    triggers=frozenset(),
    subject_type="membership",
    recipients=("member",),
    preference_optional=False,
)


def contact(engine: Engine, tenant: Tenant, external_id: str) -> int:
    with engine.begin() as conn:
        row, _ = upsert_contact(
            conn, tenant.id, external_id, ContactData(email=f"{external_id}@x.test"), now=NOW
        )
    return int(row["id"])


def test_a_rule_left_as_it_was_keeps_its_author_and_date(engine: Engine, tenant: Tenant) -> None:
    camille = contact(engine, tenant, "m-1")
    off = Preference(REMINDER.name, ANY, enabled=False)
    with engine.begin() as conn:
        replace_rules(conn, tenant.id, camille, [off], set_by=SetBy.STAFF, now=NOW)
        later = NOW + timedelta(days=1)
        everything = Preference(ANY, "email", enabled=False)
        replace_rules(conn, tenant.id, camille, [off, everything], set_by=SetBy.CONTACT, now=later)
        rows = preference_rows(conn, tenant.id, camille)
    assert [(r["kind"], r["set_by"], r["updated_at"]) for r in rows] == [
        ("*", "contact", later),
        ("booking.reminder_1h", "staff", NOW),
    ]


def test_reasons_name_the_rule_and_spare_kinds_always_sent(engine: Engine, tenant: Tenant) -> None:
    camille, noah = contact(engine, tenant, "m-1"), contact(engine, tenant, "m-2")
    with engine.begin() as conn:
        rules = [Preference(ANY, ANY, enabled=False)]
        replace_rules(conn, tenant.id, camille, rules, set_by=SetBy.CONTACT, now=NOW)
        reason = suppressed_reason(conn, tenant.id, camille, REMINDER, "email")
        assert reason == (
            "switched off by the contact on the preference page (every kind, every channel)"
        )
        assert suppressed_reason(conn, tenant.id, camille, RESET, "email") is None
        assert suppressed_reason(conn, tenant.id, noah, REMINDER, "email") is None
        assert suppressed_reason(conn, tenant.id, None, REMINDER, "email") is None
        found = suppressed_reasons(
            conn, tenant.id, [(noah, REMINDER, "email"), (camille, REMINDER, "sms")]
        )
        assert found == [None, reason]


def test_composed_rows_that_preferences_stop_are_marked_suppressed(
    engine: Engine, tenant: Tenant
) -> None:
    camille, noah = contact(engine, tenant, "m-1"), contact(engine, tenant, "m-2")
    rows: list[dict[str, Any]] = [
        {"contact_id": noah, "kind": REMINDER.name, "channel": "email", "status": "planned"},
        {"contact_id": camille, "kind": REMINDER.name, "channel": "email", "status": "planned"},
        {"contact_id": camille, "kind": RESET.name, "channel": "email", "status": "due"},
    ]
    with engine.begin() as conn:
        off = [Preference(ANY, "email", enabled=False, set_by=SetBy.STAFF)]
        replace_rules(conn, tenant.id, camille, off, set_by=SetBy.STAFF, now=NOW)
        kinds = {REMINDER.name: REMINDER, RESET.name: RESET}
        assert suppress_switched_off(conn, tenant.id, rows, kinds) == 1
    assert [r["status"] for r in rows] == ["planned", "suppressed", "due"]
    assert [r["status_reason"] for r in rows] == [
        None,
        "switched off by staff (every kind, email)",
        None,
    ]
