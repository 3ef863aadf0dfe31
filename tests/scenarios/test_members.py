"""Members through the API: validities to the member and watching staff; balance; password reset."""

from __future__ import annotations

from typing import Any

from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from tests.api.conftest import Caller
from tests.scenarios.flow import email_of, post, received_for, send_due
from tests.support.smtp import SmtpServer


def a_membership(**changes: Any) -> dict[str, Any]:
    subject = {
        "type": "membership",
        "id": "MB-1",
        "member": "m-1",
        "validity": {"type": "medical", "label": "Medical certificate", "expires_on": "2026-03-31"},
        "balance": {"amount": "12.50", "currency": "EUR"},
        "threshold": {"amount": "20.00", "currency": "EUR"},
    }
    subject.update(changes)
    return subject


def test_a_validity_nearing_its_end_goes_to_the_member_and_staff_watching_all(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    planned = post(club, clock, "member.validity_expiring", a_membership())
    send_due(dispatcher)
    assert received_for(club, smtp_server, planned, "member.validity_expiring") == sorted(
        [email_of("m-1"), email_of("s-3")]
    )


def test_a_low_balance_goes_to_the_member(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    planned = post(club, clock, "member.balance_low", a_membership())
    send_due(dispatcher)
    assert received_for(club, smtp_server, planned, "member.balance_low") == [email_of("m-1")]


def test_a_password_reset_leaves_first_and_at_once(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    link = {"link": "https://club.example/reset/abc123"}
    post(club, clock, "member.balance_low", a_membership(id="MB-2"))
    planned = post(club, clock, "member.password_reset", a_membership(), link)
    [reset] = planned
    assert reset["due_at"] == clock().isoformat().replace("+00:00", "Z")
    assert club.get(f"/v1/messages/{reset['id']}").json()["priority"] == 100
    dispatcher.settings = dispatcher.settings.model_copy(update={"batch_size": 1})
    dispatcher.run_once()  # one message: the reset, before the older balance notice
    assert len(smtp_server.received) == 1
    assert received_for(club, smtp_server, planned, "member.password_reset") == [email_of("m-1")]
