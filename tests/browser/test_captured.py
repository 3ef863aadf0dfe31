"""The captured-mail page lists what the local capture kept; a mail opens to show its subject."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlalchemy.engine import Engine

from courrier.channels.capture import LocalCapture
from courrier.clock import ManualClock
from courrier.settings import Settings
from tests.api.conftest import Caller, booking, member
from tests.api.test_captured import capture, send_due  # noqa: F401
from tests.support.browser import expect

if TYPE_CHECKING:
    from playwright.sync_api import Page


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No SMTP URL: Courrier captures mail locally, and serves the captured-mail page."""
    return settings.model_copy(update={"smtp_url": None})


def test_the_page_lists_a_captured_mail_and_opening_it_shows_its_subject(
    page: Page,
    live: str,
    alice: Caller,
    engine: Engine,
    settings: Settings,
    capture: LocalCapture,  # noqa: F811
    clock: ManualClock,
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    assert alice.post("/v1/events", json=booking()).status_code == 202
    assert send_due(engine, settings, capture, clock) == 1  # the booking confirmation
    [mail] = alice.get("/v1/captured").json()["items"]

    page.goto(f"{live}/captured")
    expect(page.get_by_role("heading", level=1)).to_have_text("Captured mail")
    row = page.get_by_role("row").filter(has_text="camille@example.org")
    row.get_by_role("link", name=mail["subject"]).click()

    expect(page).to_have_url(f"{live}/captured/{mail['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text(mail["subject"])
    expect(page.get_by_role("link", name="invitation.ics")).to_be_visible()
