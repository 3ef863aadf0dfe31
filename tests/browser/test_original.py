"""The "view the original" page of a sent message: its HTML, its attachment, its strict CSP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from courrier.store.schema import message_contents
from tests.api.conftest import Caller
from tests.deliverability.conftest import html_part, sent_mail
from tests.support.browser import expect
from tests.support.smtp import SmtpServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

#: a script that, if it ran, would change the page's title and add an element
SCRIPT = (
    "<script>document.title = 'script ran';"
    "document.body.insertAdjacentHTML('beforeend', '<p id=\"script-ran\">ran</p>')</script>"
)


def original_link(live: str, mail_html: str) -> str:
    """The "view the original" link in a mail's HTML."""
    found = re.search(rf'href="({re.escape(live)}/t/v/[^"]+)"', mail_html)
    assert found is not None, "no link to the original in the mail"
    return found.group(1)


@pytest.fixture
def sent(
    live: str, club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> tuple[dict[str, Any], str]:
    """A booking confirmation sent to m-1: its detail and the original link in its mail."""
    detail, received = sent_mail(club, clock, dispatcher, smtp_server)
    return detail, original_link(live, html_part(received.message))


def test_the_original_shows_the_message_and_its_invitation_downloads(
    page: Page, sent: tuple[dict[str, Any], str], club: Caller, tmp_path: Path
) -> None:
    detail, link = sent
    page.goto(link)
    expect(page.locator("body")).to_contain_text("F-GKQA (DR400)")
    attachment = page.get_by_role("link", name="invitation.ics")
    with page.expect_download() as downloading:
        attachment.click()
    download = downloading.value
    assert download.suggested_filename == "invitation.ics"
    saved = tmp_path / "invitation.ics"
    download.save_as(saved)
    assert saved.read_text().startswith("BEGIN:VCALENDAR")
    reading = club.get(f"/v1/messages/{detail['id']}").json()["reading"]
    assert reading["read"] is True  # following the original is the proof of reading


@pytest.fixture
def scripted(sent: tuple[dict[str, Any], str], engine: Engine) -> str:
    """The original link of a message whose stored HTML carries an inline script."""
    detail, link = sent
    with engine.begin() as conn:
        query = select(message_contents.c.body_html).where(
            message_contents.c.message_id == detail["id"]
        )
        html = conn.execute(query).scalar_one()
        at = html.lower().rfind("</body")
        assert at >= 0, "the stored HTML has no </body>"
        scripted_html = html[:at] + SCRIPT + html[at:]
        conn.execute(
            update(message_contents)
            .where(message_contents.c.message_id == detail["id"])
            .values(body_html=scripted_html)
        )
    return link


@pytest.fixture
def page_without_csp(browser: Browser) -> Iterator[Page]:
    """A page that ignores Content-Security-Policy: the control that the script does run."""
    context = browser.new_context(bypass_csp=True)
    yield context.new_page()
    context.close()


def test_an_inline_script_in_a_message_does_not_run_on_the_original_page(
    page: Page, page_without_csp: Page, scripted: str
) -> None:
    with page.expect_console_message(lambda m: "Content Security Policy" in m.text) as refused:
        page.goto(scripted)
    assert "script-src" in refused.value.text or "default-src" in refused.value.text
    expect(page.locator("body")).to_contain_text("F-GKQA (DR400)")
    expect(page.locator("#script-ran")).to_have_count(0)
    assert page.title() != "script ran"

    page_without_csp.goto(scripted)  # the same page with the policy ignored runs it
    expect(page_without_csp).to_have_title("script ran")
    expect(page_without_csp.locator("#script-ran")).to_have_count(1)
