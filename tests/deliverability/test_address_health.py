"""Address health through the dispatcher and a real SMTP server: what counts, what blocks, what not.

The recorder (aiosmtpd) is scripted to refuse with 550 or defer with 451; the
dispatcher records the replies; the address's count, its block and the next
message's suppression are read back from the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from courrier.channels.email import SmtpSender
from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from courrier.engine.health import enhanced_status, fallback_channel
from courrier.settings import Settings
from courrier.store import health, timeline, webhooks
from courrier.store.schema import (
    address_audit,
    address_errors,
    contacts,
    tenants,
    webhook_deliveries,
)
from tests.support import factories
from tests.support.dispatching import dispatcher_for
from tests.support.smtp import SmtpServer

ADDRESS = "gone@example.test"
REFUSAL = "550 5.1.1 <gone@example.test>: Recipient address rejected: User unknown"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def dispatcher(engine: Engine, settings: Settings, clock: ManualClock) -> Iterator[Dispatcher]:
    with dispatcher_for(engine, settings, clock, "w", pool_size=2) as worker:
        yield worker


@pytest.fixture
def tenant_id(engine: Engine, clock: ManualClock) -> int:
    with engine.begin() as conn:
        return factories.insert_tenant(conn, now=clock())


def add_messages(
    engine: Engine, tenant_id: int, count: int, clock: ManualClock, **overrides: Any
) -> list[int]:
    overrides.setdefault("address", ADDRESS)
    with engine.begin() as conn:
        return factories.insert_messages(conn, tenant_id, count, now=clock(), **overrides)


def state(engine: Engine, tenant_id: int, address: str = ADDRESS) -> dict[str, Any] | None:
    with engine.connect() as conn:
        return health.get_health(conn, tenant_id, address)


# --- the fallback rule, on its own ---------------------------------------------------------------


def test_a_kind_allowing_sms_would_fall_back_to_the_contacts_phone_if_sms_existed() -> None:
    channels = ("email", "sms")
    phone = {"email": ADDRESS, "sms": "+33612345678"}
    assert fallback_channel("booking.reminder", channels, "email", phone, {"email", "sms"}) == (
        "sms",
        "sms to +33612345678",
    )
    assert fallback_channel("booking.reminder", channels, "email", phone, {"email"}) == (
        None,
        "sms is not available in this installation",
    )


def test_no_fallback_without_another_channel_a_phone_or_for_a_password_reset() -> None:
    both = {"email", "sms"}
    assert fallback_channel("booking.confirmation", ("email",), "email", {}, both) == (
        None,
        "the kind allows no other channel",
    )
    no_phone = fallback_channel("x", ("email", "sms"), "email", {"sms": None}, both)
    assert no_phone == (None, "the contact has no phone number")
    reset = fallback_channel(
        "member.password_reset", ("email", "sms"), "email", {"sms": "+33612345678"}, both
    )
    assert reset[0] is None
    assert "member.password_reset is never sent by another channel" in reset[1]


def test_the_enhanced_status_code_is_read_from_the_reply() -> None:
    assert enhanced_status("5.1.1 <a@b>: Recipient address rejected") == "5.1.1"
    assert enhanced_status("Mailbox full (5.2.2)") == "5.2.2"
    assert enhanced_status("no code here") is None


# --- counting through real SMTP replies ----------------------------------------------------------


def test_a_sink_refusing_every_recipient_with_550_counts_permanent_errors_and_the_13th_blocks(
    engine: Engine,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    clock: ManualClock,
    tenant_id: int,
) -> None:
    with engine.begin() as conn:
        webhooks.create_endpoint(
            conn,
            tenant_id,
            url="https://hooks.example.test/courrier",
            secret_encrypted="not used here",
            event_types=["address.blocked"],
            description=None,
            now=clock(),
        )
    first = add_messages(engine, tenant_id, 12, clock)
    smtp_server.script(*[REFUSAL] * 12)
    assert dispatcher.run_once() == 12
    assert factories.statuses(engine, first) == {"failed": 12}
    twelve = state(engine, tenant_id)
    assert twelve is not None
    assert (twelve["error_count"], twelve["blocked"]) == (12, False)  # at the threshold: not yet
    assert twelve["last_error"] == REFUSAL

    [thirteenth] = add_messages(engine, tenant_id, 1, clock, address="Gone@Example.test")
    smtp_server.script(REFUSAL)
    dispatcher.run_once()
    blocked = state(engine, tenant_id)
    assert blocked is not None
    assert (blocked["error_count"], blocked["blocked"]) == (13, True)
    with engine.connect() as conn:
        errors = conn.execute(select(address_errors).order_by(address_errors.c.id)).all()
        audit = conn.execute(select(address_audit)).all()
    assert {(e.source, e.code, e.status, e.counted) for e in errors} == {
        ("smtp", 550, "5.1.1", True)
    }
    assert errors[-1].message_id == thirteenth
    assert [(a.action, a.actor, a.error_count) for a in audit] == [("blocked", "courrier", 13)]
    assert "13 errors" in audit[0].reason
    with engine.connect() as conn:
        [hook] = conn.execute(select(webhook_deliveries)).all()
    assert hook.event_type == "address.blocked" and hook.message_id is None
    assert hook.payload["data"]["address"] == ADDRESS
    assert hook.payload["data"]["error_count"] == 13

    [next_one] = add_messages(engine, tenant_id, 1, clock)
    dispatcher.run_once()
    suppressed = factories.message(engine, next_one)
    assert suppressed["status"] == "suppressed"
    assert "gone@example.test is blocked after 13 errors" in suppressed["status_reason"]
    assert "5.1.1" in suppressed["status_reason"]
    assert "no fallback: the kind allows no other channel" in suppressed["status_reason"]
    assert len(smtp_server.handler.received) == 0  # nothing reached the server


def test_a_tenant_with_a_lower_threshold_blocks_sooner_and_others_are_not_affected(
    engine: Engine,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    clock: ManualClock,
    tenant_id: int,
) -> None:
    with engine.begin() as conn:
        conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(block_threshold=1))
        other = factories.insert_tenant(conn, now=clock())
    add_messages(engine, tenant_id, 2, clock)
    add_messages(engine, other, 1, clock)
    smtp_server.script(REFUSAL, REFUSAL, REFUSAL)
    dispatcher.run_once()
    mine, theirs = state(engine, tenant_id), state(engine, other)
    assert mine is not None and theirs is not None
    assert (mine["error_count"], mine["blocked"]) == (2, True)
    assert (theirs["error_count"], theirs["blocked"]) == (1, False)


def test_a_deferral_is_retried_and_not_counted(
    engine: Engine,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    clock: ManualClock,
    tenant_id: int,
) -> None:
    [message_id] = add_messages(engine, tenant_id, 1, clock)
    smtp_server.script("451 4.3.0 Try again later")
    dispatcher.run_once()
    assert factories.message(engine, message_id)["status"] == "due"
    assert state(engine, tenant_id) is None  # no error recorded against the address
    clock.advance(timedelta(seconds=5))
    dispatcher.run_once()
    assert factories.message(engine, message_id)["status"] == "sent"
    assert state(engine, tenant_id) is None


def test_giving_up_after_the_last_retry_does_not_blame_the_address(
    engine: Engine, settings: Settings, smtp_server: SmtpServer, clock: ManualClock, tenant_id: int
) -> None:
    assert settings.smtp is not None
    sender = SmtpSender(settings.smtp, pool_size=1, timeout=5)
    once = settings.model_copy(update={"max_attempts": 1})
    dispatcher = Dispatcher(engine, once, sender, clock=clock, worker_id="w")
    try:
        [message_id] = add_messages(engine, tenant_id, 1, clock)
        smtp_server.script("451 4.3.0 Try again later")
        dispatcher.run_once()
    finally:
        dispatcher.close()
        sender.close()
    assert factories.message(engine, message_id)["status"] == "failed"
    assert state(engine, tenant_id) is None


def test_a_phone_number_is_kept_as_stored_on_the_sms_channel(
    engine: Engine, clock: ManualClock, tenant_id: int
) -> None:
    with engine.begin() as conn:
        errors = [
            health.AddressError(tenant_id, "+33612345678", "smtp", None, None, "refused", None),
            health.AddressError(tenant_id, " Ada@Example.ORG ", "dsn", 550, "5.1.1", None, None),
        ]
        health.record_errors(conn, errors, clock())
    phone, email = (
        state(engine, tenant_id, "+33612345678"),
        state(engine, tenant_id, "ada@example.org"),
    )
    assert phone is not None and email is not None
    assert (phone["address"], phone["channel"]) == ("+33612345678", "sms")
    assert (email["address"], email["channel"], email["last_error"]) == (
        "ada@example.org",
        "email",
        "550 5.1.1",
    )


def test_a_password_reset_to_a_blocked_address_is_suppressed_saying_it_never_falls_back(
    engine: Engine,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    clock: ManualClock,
    tenant_id: int,
) -> None:
    with engine.begin() as conn:
        error = health.AddressError(tenant_id, ADDRESS, "smtp", 550, "5.1.1", "User unknown", None)
        conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(block_threshold=0))
        assert health.record_errors(conn, [error], clock()) == [ADDRESS]
        contact_id = conn.execute(
            contacts.insert()
            .values(
                tenant_id=tenant_id,
                external_id="m-1",
                phone="+33612345678",
                created_at=clock(),
                updated_at=clock(),
            )
            .returning(contacts.c.id)
        ).scalar_one()
    [message_id] = add_messages(
        engine, tenant_id, 1, clock, kind="member.password_reset", contact_id=contact_id
    )
    dispatcher.run_once()
    row = factories.message(engine, message_id)
    assert row["status"] == "suppressed"
    assert (
        "no fallback: member.password_reset is never sent by another channel"
        in (row["status_reason"])
    )
    with engine.connect() as conn:
        assert timeline.timeline_of(conn, message_id)[-1]["entry"] == "checked"
