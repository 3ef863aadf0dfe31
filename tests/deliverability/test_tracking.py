"""Tracking: signed redirects, the open pixel, the original page, downloads; forged tokens."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from courrier.api.tracking import original_page
from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from courrier.render.links import LinkSigner
from courrier.render.tracking import track_html
from courrier.store.schema import webhook_deliveries, webhook_endpoints
from tests.api.conftest import Caller
from tests.deliverability.conftest import html_part, sent_mail
from tests.support.smtp import SmtpServer

BASE = "http://courrier.test"
RESET_LINK = "https://club.example/reset/abc123?user=1&step=2"
BROWSER = {"User-Agent": "Mozilla/5.0 (TestMail 1.0)"}


def password_reset(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> tuple[dict[str, Any], str]:
    """A sent password reset (it holds a web link) and its HTML part as received."""
    message, received = sent_mail(
        club,
        clock,
        dispatcher,
        smtp_server,
        event_type="member.password_reset",
        subject={"type": "membership", "id": "MB-1", "member": "m-1"},
        kind="member.password_reset",
        payload={"link": RESET_LINK},
    )
    return message, html_part(received.message)


def links(html: str, kind: str) -> list[str]:
    return [u.removeprefix(BASE) for u in re.findall(rf'"({BASE}/t/{kind}/[^"]+)"', html)]


def state(caller: Caller, message: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    detail = caller.get(f"/v1/messages/{message['id']}").json()
    return detail["status"], detail["timeline"]


def test_web_links_go_through_signed_redirects_with_a_pixel_and_a_view_online_link(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    _, html = password_reset(club, clock, dispatcher, smtp_server)
    assert RESET_LINK.replace("&", "&amp;") not in html and RESET_LINK not in html
    assert links(html, "c"), html
    [pixel] = links(html, "o")
    assert pixel.endswith(".gif")
    assert html.index(pixel) > html.lower().index("<body")
    between = html[html.index(pixel) + len(pixel) : html.lower().index("</body>")]
    assert re.fullmatch(r'"[^<>]*>\s*', between), between  # the pixel closes the body
    [view] = links(html, "v")
    assert html.index(view) < html.index(links(html, "c")[0])  # at the top
    for own in re.findall(rf'href="({BASE}/(?:preferences|u)/[^"]+)"', html):
        assert "/t/c/" not in own  # Courrier's own links are not wrapped


def test_opening_records_the_user_agent_and_moves_the_status_to_opened(
    club: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    client: TestClient,
) -> None:
    message, html = password_reset(club, clock, dispatcher, smtp_server)
    [pixel] = links(html, "o")
    response = client.get(pixel, headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.headers["cache-control"] == "no-store"
    assert response.content.startswith(b"GIF89a")
    assert "set-cookie" not in response.headers
    status, timeline = state(club, message)
    assert status == "opened"
    assert timeline[-1]["entry"] == "opened"
    assert timeline[-1]["data"]["user_agent"] == BROWSER["User-Agent"]


def test_a_click_redirects_to_the_signed_url_and_moves_the_status_to_clicked(
    club: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    client: TestClient,
) -> None:
    message, html = password_reset(club, clock, dispatcher, smtp_server)
    [click] = [c for c in links(html, "c") if c]
    response = client.get(click, headers=BROWSER, follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == RESET_LINK  # &amp; read back as &
    status, timeline = state(club, message)
    assert status == "clicked"
    assert timeline[-1]["data"] == {"user_agent": BROWSER["User-Agent"], "url": RESET_LINK}


def test_a_late_open_is_recorded_but_never_moves_the_status_back(
    club: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    client: TestClient,
) -> None:
    message, html = password_reset(club, clock, dispatcher, smtp_server)
    client.get(links(html, "c")[0], follow_redirects=False)
    client.get(links(html, "o")[0])
    status, timeline = state(club, message)
    assert status == "clicked"
    assert [e["entry"] for e in timeline[-2:]] == ["clicked", "opened"]
    assert timeline[-1]["status"] == "clicked"


def test_the_original_page_shows_the_mail_with_its_attachments_and_proves_the_read(
    club: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    client: TestClient,
) -> None:
    message, received = sent_mail(club, clock, dispatcher, smtp_server)
    [view] = links(html_part(received.message), "v")
    page = client.get(view, headers=BROWSER)
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script" not in policy
    assert page.headers["cache-control"] == "no-store"
    assert message["body_html"].split("</body>")[0] in page.text
    [download] = re.findall(rf'href="{BASE}(/t/d/[^"]+)"', page.text)
    status, timeline = state(club, message)
    assert status == "accessed"
    assert timeline[-1]["entry"] == "accessed"

    ics = client.get(download, headers=BROWSER)
    assert ics.status_code == 200
    [attachment] = message["attachments"]
    assert ics.headers["content-type"].startswith(attachment["content_type"])
    assert ics.content.startswith(b"BEGIN:VCALENDAR")
    status, timeline = state(club, message)
    assert status == "accessed"  # final: a download does not move it back
    assert timeline[-1]["entry"] == "downloaded"


def test_the_original_of_a_text_only_mail_shows_its_text_escaped() -> None:
    page = original_page(
        {
            "subject_line": "Hello <you>",
            "body_text": "Line & more",
            "body_html": None,
            "attachments": [{"filename": "a.pdf", "content_type": "application/pdf"}],
            "locale": "en",
        },
        ["http://courrier.test/t/d/x"],
    )
    assert "<h1>Hello &lt;you&gt;</h1>" in page and "Line &amp; more" in page
    assert 'href="http://courrier.test/t/d/x">a.pdf</a>' in page


def test_downloading_moves_a_sent_message_to_clicked(
    club: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    client: TestClient,
    settings: Any,
) -> None:
    message, _ = sent_mail(club, clock, dispatcher, smtp_server)
    url = LinkSigner(settings.signing_key(), BASE).download(message["id"], 0)
    response = client.get(url.removeprefix(BASE), headers=BROWSER)
    assert response.status_code == 200
    assert "attachment; filename" in response.headers["content-disposition"]
    status, timeline = state(club, message)
    assert (status, timeline[-1]["entry"]) == ("clicked", "downloaded")
    assert timeline[-1]["data"]["user_agent"] == BROWSER["User-Agent"]


def test_forged_or_altered_tracking_tokens_are_404_and_change_nothing(
    club: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    client: TestClient,
    settings: Any,
) -> None:
    message, received = sent_mail(club, clock, dispatcher, smtp_server)
    html = html_part(received.message)
    foreign = LinkSigner("another-secret", BASE)
    mine = LinkSigner(settings.signing_key(), BASE)
    mid = message["id"]
    genuine = {
        "o": links(html, "o")[0],
        "v": links(html, "v")[0],
        "c": mine.click(mid, "https://example.org/").removeprefix(BASE),
        "d": mine.download(mid, 0).removeprefix(BASE),
    }
    before = state(club, message)
    for kind, url in genuine.items():
        token = url.removeprefix(f"/t/{kind}/").removesuffix(".gif")
        suffix = ".gif" if kind == "o" else ""
        head, _, signature = token.rpartition(".")
        bad = [
            f"/t/{kind}/{head}.{signature[::-1]}{suffix}",  # altered signature
            f"/t/{kind}/{head[:-2]}xy.{signature}{suffix}",  # altered payload
            f"/t/{kind}/{'A' * 30}{suffix}",
        ]
        forged = {
            "o": foreign.open_pixel(mid),
            "v": foreign.original(mid),
            "c": foreign.click(mid, "https://evil.example/"),
            "d": foreign.download(mid, 0),
        }[kind]
        bad.append(forged.removeprefix(BASE))
        other = mine.original(mid) if kind != "v" else mine.open_pixel(mid).removesuffix(".gif")
        bad.append(f"/t/{kind}/{other.rpartition('/')[2]}{suffix}")  # another purpose's token
        for url in bad:
            response = client.get(url, follow_redirects=False)
            assert response.status_code == 404, url
    assert state(club, message) == before


def test_with_tracking_off_the_html_leaves_as_it_was_written(
    club: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
) -> None:
    assert club.patch("/v1/tenant", json={"tracking": False}).status_code == 200
    message, received = sent_mail(club, clock, dispatcher, smtp_server)
    html = html_part(received.message)
    assert html.replace("\r\n", "\n") == message["body_html"].replace("\r\n", "\n")
    assert "/t/" not in html


def test_each_status_change_is_queued_once_for_the_tenants_webhooks(
    club: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    client: TestClient,
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(webhook_endpoints).values(
                tenant_id=club.tenant.id,
                url="https://hooks.alpha.example/courrier",
                secret_encrypted="not used here",
                event_types=[],
                enabled=True,
                created_at=clock(),
            )
        )
    message, html = password_reset(club, clock, dispatcher, smtp_server)
    for _ in range(2):
        client.get(links(html, "o")[0], headers=BROWSER)
        client.get(links(html, "c")[0], headers=BROWSER, follow_redirects=False)
    with engine.connect() as conn:
        queued = conn.execute(
            select(webhook_deliveries.c.event_type, webhook_deliveries.c.payload)
            .where(webhook_deliveries.c.message_id == message["id"])
            .order_by(webhook_deliveries.c.id)
        ).all()
    types = [event_type for event_type, _ in queued]
    assert types == ["message.sent", "message.opened", "message.clicked"]
    assert RESET_LINK in str(queued[-1].payload)


def test_the_rewrite_keeps_courriers_own_links_and_reads_html_entities_back() -> None:
    signer = LinkSigner("k", BASE)
    body = (
        '<html><BODY class="x"><A class="b" HREF=\'https://a.example/?x=1&amp;y=2\'>a</A>'
        f'<a href="{BASE}/preferences/tok">prefs</a><a href="mailto:desk@alpha.example">m</a>'
        '<link href="https://fonts.example/css"></body></html>'
    )
    tracked = track_html(body, 7, signer, "nl")
    [click] = re.findall(r"HREF='([^']+)'", tracked)
    assert signer.verify("click", click.rpartition("/")[2]) == [7, "https://a.example/?x=1&y=2"]
    assert f'href="{BASE}/preferences/tok"' in tracked
    assert 'href="mailto:desk@alpha.example"' in tracked
    assert '<link href="https://fonts.example/css">' in tracked  # only links people follow
    assert "Dit bericht online bekijken" in tracked
    assert tracked.index("<BODY") < tracked.index("/t/v/") < tracked.index("/t/o/")
    assert tracked.endswith("</body></html>")


def test_a_fragment_without_body_tags_gets_the_link_first_and_the_pixel_last() -> None:
    tracked = track_html("<p>Hello</p>", 7, LinkSigner("k", BASE))
    assert tracked.startswith("<p style=") and "View this message online" in tracked
    assert tracked.endswith('height:1px">')
