"""Requests through the API: new ones to the managers at high priority, comments to the right side."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from tests.api.conftest import Caller
from tests.scenarios.flow import email_of, post, received_for, send_due
from tests.support.smtp import SmtpServer


def a_request(**changes: Any) -> dict[str, Any]:
    subject = {
        "type": "request",
        "id": "R-1",
        "title": "Leaking tap in hangar 2",
        "category": "plumbing",
        "requester": "m-1",
        "assigned_manager": "s-2",
        "followers": ["m-2"],
        "status": "opened",
    }
    subject.update(changes)
    return subject


def test_a_new_request_goes_to_category_assigned_and_default_managers_first(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    planned = post(club, clock, "request.created", a_request(assigned_manager=None))
    assert {m["kind"] for m in planned} == {"request.new"}
    send_due(dispatcher)
    # s-1 and s-4 watch plumbing; s-2 is the default manager
    assert received_for(club, smtp_server, planned, "request.new") == sorted(
        [email_of("s-1"), email_of("s-4"), email_of("s-2")]
    )
    detail = club.get(f"/v1/messages/{planned[0]['id']}").json()
    assert detail["priority"] == 80


def test_the_newly_assigned_manager_hears_of_it(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    planned = post(club, clock, "request.assigned", a_request(assigned_manager="s-4"))
    send_due(dispatcher)
    assert received_for(club, smtp_server, planned, "request.assigned") == [email_of("s-4")]


def test_a_public_comment_goes_to_requester_manager_and_followers_but_not_its_author(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    comment = {"visibility": "public", "author": "m-1", "text": "Still leaking."}
    planned = post(club, clock, "request.commented", a_request(), comment)
    assert {m["kind"] for m in planned} == {"request.comment_public"}
    send_due(dispatcher)
    assert received_for(club, smtp_server, planned, "request.comment_public") == sorted(
        [email_of("s-2"), email_of("m-2")]
    )


def test_an_internal_comment_goes_to_managers_only(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    comment = {"visibility": "internal", "author": "s-4", "text": "Plumber on Tuesday."}
    planned = post(club, clock, "request.commented", a_request(), comment)
    assert {m["kind"] for m in planned} == {"request.comment_internal"}
    send_due(dispatcher)
    # assigned s-2 and category manager s-1; s-4 wrote it; requester and followers never
    assert received_for(club, smtp_server, planned, "request.comment_internal") == sorted(
        [email_of("s-2"), email_of("s-1")]
    )


def test_followers_and_status_changes(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    followed = post(
        club,
        clock,
        "request.follower_added",
        a_request(followers=["m-2", "m-3"]),
        {"follower": "m-3"},
    )
    clock.advance(timedelta(minutes=1))
    resolved = post(
        club,
        clock,
        "request.status_changed",
        a_request(followers=["m-2", "m-3"], status="resolved"),
    )
    send_due(dispatcher)
    assert received_for(club, smtp_server, followed, "request.follower_added") == [email_of("m-3")]
    assert received_for(club, smtp_server, resolved, "request.status_changed") == sorted(
        [email_of("m-1"), email_of("m-2"), email_of("m-3")]
    )
