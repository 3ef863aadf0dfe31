"""A member opens their preference page in Chromium, unticks a kind and saves it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.console.preferences import preference_url
from courrier.settings import Settings
from courrier.store.contacts import get_contact
from tests.api.conftest import Caller
from tests.deliverability.conftest import a_booking
from tests.scenarios.flow import post
from tests.support.browser import expect

if TYPE_CHECKING:
    from playwright.sync_api import Page


def page_of(settings: Settings, engine: Engine, caller: Caller, external_id: str) -> str:
    """The signed link to a contact's preference page, as the footer of their mails has it."""
    with engine.connect() as conn:
        contact = get_contact(conn, caller.tenant.id, external_id)
    assert contact is not None
    return preference_url(settings, caller.tenant.id, contact["id"])


def test_a_member_unticks_a_kind_saves_and_its_next_message_is_suppressed(
    page: Page, live: str, club: Caller, settings: Settings, engine: Engine, clock: ManualClock
) -> None:
    page.goto(page_of(settings, engine, club, "m-1"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Vos notifications de Alpha")
    row = page.get_by_role("row").filter(has_text="booking.confirmation")
    box = row.get_by_role("checkbox", name="courriel")
    expect(box).to_be_checked()
    box.uncheck()
    page.get_by_role("button", name="Enregistrer").click()

    expect(page.get_by_role("status")).to_have_text("Vos choix sont enregistrés.")
    expect(box).not_to_be_checked()  # the page after the save shows the stored switch
    rules = club.get("/v1/contacts/m-1/preferences").json()["preferences"]
    assert [(r["kind"], r["channel"], r["enabled"], r["set_by"]) for r in rules] == [
        ("booking.confirmation", "email", False, "contact")
    ]
    planned = post(club, clock, "booking.created", a_booking(booker="m-1"))
    [confirmation] = [m for m in planned if m["kind"] == "booking.confirmation"]
    assert confirmation["status"] == "suppressed"


def test_a_staff_member_chooses_a_daily_digest_of_new_bookings(
    page: Page, live: str, club: Caller, settings: Settings, engine: Engine
) -> None:
    page.goto(page_of(settings, engine, club, "s-1"))  # Sam gets a copy of each booking
    copies = page.get_by_role("group", name="Copies des nouvelles réservations")
    expect(copies.get_by_role("radio", name="un courriel par réservation")).to_be_checked()
    copies.get_by_role("radio", name="un courriel par jour avec les réservations du jour").check()
    page.get_by_role("button", name="Enregistrer").click()

    expect(page.get_by_role("status")).to_have_text("Vos choix sont enregistrés.")
    assert club.get("/v1/contacts/s-1").json()["booking_copy"] == "digest"


def test_a_forged_preference_link_shows_the_not_found_page(
    page: Page, live: str, club: Caller, settings: Settings, engine: Engine
) -> None:
    url = page_of(settings, engine, club, "m-1")
    forged = url[:-2] + ("AA" if not url.endswith("AA") else "BB")
    response = page.goto(forged)
    assert response is not None and response.status == 404
    expect(page.locator("body")).to_contain_text("this preference link is not valid")
    expect(page.get_by_role("checkbox")).to_have_count(0)
