"""RFC 8058 one-click unsubscribe: the headers, the POST that switches a kind off, forged tokens."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from courrier.render.links import LinkSigner
from courrier.settings import Settings
from courrier.store.preferences import preference_rows
from courrier.store.schema import messages
from tests.api.conftest import Caller
from tests.deliverability.conftest import a_booking, sent_mail
from tests.scenarios.flow import post, send_due
from tests.support.smtp import SmtpServer

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
MEMBERSHIP = {"type": "membership", "id": "MB-1", "member": "m-1"}


def unsubscribe_url(header: str) -> str:
    found = re.fullmatch(r"<(http://courrier\.test/u/[^>]+)>", header)
    assert found is not None, header
    return found.group(1).removeprefix("http://courrier.test")


def contact_of(engine: Engine, message: dict[str, Any]) -> int:
    """The contact row id a message went to."""
    with engine.connect() as conn:
        found = conn.execute(select(messages.c.contact_id).where(messages.c.id == message["id"]))
        return int(found.scalar_one())


def rules(engine: Engine, caller: Caller, contact_id: int) -> list[tuple[str, str, bool, str]]:
    with engine.connect() as conn:
        rows = preference_rows(conn, caller.tenant.id, contact_id)
    return [(r["kind"], r["channel"], r["enabled"], r["set_by"]) for r in rows]


def test_a_kind_the_contact_may_switch_off_carries_one_click_unsubscribe(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    _, received = sent_mail(club, clock, dispatcher, smtp_server)
    assert unsubscribe_url(received.message["List-Unsubscribe"]).startswith("/u/")
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_password_reset_never_carries_unsubscribe_headers(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    _, received = sent_mail(
        club,
        clock,
        dispatcher,
        smtp_server,
        event_type="member.password_reset",
        subject=MEMBERSHIP,
        kind="member.password_reset",
        payload={"link": "https://club.example/reset/abc123"},
    )
    assert "List-Unsubscribe" not in received.message
    assert "List-Unsubscribe-Post" not in received.message


def test_one_click_switches_the_kind_off_and_the_next_one_is_suppressed(
    club: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    client: TestClient,
    engine: Engine,
) -> None:
    message, received = sent_mail(club, clock, dispatcher, smtp_server)
    url = unsubscribe_url(received.message["List-Unsubscribe"])
    response = client.post(url, data=ONE_CLICK)  # what a mailbox provider sends: no cookie, no key
    assert response.status_code == 200
    assert rules(engine, club, contact_of(engine, message)) == [
        ("booking.confirmation", "email", False, "contact")
    ]
    clock.advance(timedelta(minutes=5))
    planned = post(club, clock, "booking.created", a_booking("B-2"))
    [again] = [m for m in planned if m["kind"] == "booking.confirmation"]
    assert again["status"] == "suppressed"
    send_due(dispatcher)
    to_member = [m for m in smtp_server.received if m.recipients == ["camille@example.org"]]
    assert len(to_member) == 1  # the first confirmation only


def test_following_the_link_shows_a_button_that_posts_and_the_preference_page(
    club: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    client: TestClient,
    engine: Engine,
) -> None:
    message, received = sent_mail(club, clock, dispatcher, smtp_server)
    url = unsubscribe_url(received.message["List-Unsubscribe"])
    page = client.get(url)
    assert page.status_code == 200
    assert '<form method="post">' in page.text
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert "http://courrier.test/preferences/" in page.text
    assert '<html lang="fr">' in page.text and "Me désabonner" in page.text  # Camille's language
    assert "Confirmation of a new booking" in page.text  # the kind as the preference page names it
    assert "script-src" not in page.headers["content-security-policy"]
    assert "set-cookie" not in page.headers
    assert rules(engine, club, contact_of(engine, message)) == []  # looking changes nothing


def test_a_post_without_the_one_click_body_changes_nothing(
    club: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    client: TestClient,
    engine: Engine,
) -> None:
    message, received = sent_mail(club, clock, dispatcher, smtp_server)
    url = unsubscribe_url(received.message["List-Unsubscribe"])
    assert client.post(url, data={"List-Unsubscribe": "yes"}).status_code == 400
    assert rules(engine, club, contact_of(engine, message)) == []


def test_a_forged_or_altered_unsubscribe_token_is_404_and_changes_nothing(
    club: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    client: TestClient,
    engine: Engine,
    settings: Settings,
) -> None:
    message, received = sent_mail(club, clock, dispatcher, smtp_server)
    url = unsubscribe_url(received.message["List-Unsubscribe"])
    altered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    foreign = LinkSigner("another-secret", settings.base_url).unsubscribe(
        club.tenant.id, contact_of(engine, message), "booking.confirmation"
    )
    other_purpose = LinkSigner(settings.signing_key(), settings.base_url).original(message["id"])
    for bad in (
        altered,
        "/u/" + "x" * 40,
        foreign.removeprefix("http://courrier.test"),
        "/u/" + other_purpose.rpartition("/")[2],
    ):
        assert client.post(bad, data=ONE_CLICK).status_code == 404, bad
        assert client.get(bad).status_code == 404, bad
    assert rules(engine, club, contact_of(engine, message)) == []
