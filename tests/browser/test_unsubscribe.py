"""The one-click unsubscribe page: its button switches the kind off, in the member's language."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from courrier.render.links import LinkSigner
from courrier.settings import Settings
from courrier.store.contacts import get_contact
from tests.api.conftest import Caller
from tests.support.browser import expect

if TYPE_CHECKING:
    from playwright.sync_api import Page


def unsubscribe_link(settings: Settings, engine: Engine, caller: Caller, external_id: str) -> str:
    """The ``List-Unsubscribe`` address of a booking confirmation to ``external_id``."""
    with engine.connect() as conn:
        contact = get_contact(conn, caller.tenant.id, external_id)
    assert contact is not None
    links = LinkSigner(settings.signing_key(), settings.base_url)
    return links.unsubscribe(caller.tenant.id, contact["id"], "booking.confirmation")


def test_the_button_switches_the_kind_off_in_one_click_and_says_so_in_french(
    page: Page, live: str, club: Caller, settings: Settings, engine: Engine
) -> None:
    page.goto(unsubscribe_link(settings, engine, club, "m-1"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Se désabonner")
    expect(page.locator("body")).to_contain_text(
        "Ne plus recevoir cette notification par courriel ?"
    )
    assert club.get("/v1/contacts/m-1/preferences").json()["preferences"] == []

    page.get_by_role("button", name="Me désabonner").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Désabonnement enregistré")
    expect(page.locator("body")).to_contain_text("Vous ne recevrez plus cette notification")
    expect(page.get_by_role("button")).to_have_count(0)
    rules = club.get("/v1/contacts/m-1/preferences").json()["preferences"]
    assert [(r["kind"], r["channel"], r["enabled"], r["set_by"]) for r in rules] == [
        ("booking.confirmation", "email", False, "contact")
    ]


def test_the_page_links_to_every_preference_of_the_member(
    page: Page, live: str, club: Caller, settings: Settings, engine: Engine
) -> None:
    page.goto(unsubscribe_link(settings, engine, club, "m-1"))
    page.get_by_role("link", name="Choisir toutes vos notifications").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Vos notifications de Alpha")


def test_a_forged_unsubscribe_link_shows_the_not_found_page_and_changes_nothing(
    page: Page, live: str, club: Caller, settings: Settings, engine: Engine
) -> None:
    url = unsubscribe_link(settings, engine, club, "m-1")
    forged = url[:-2] + ("AA" if not url.endswith("AA") else "BB")
    response = page.goto(forged)
    assert response is not None and response.status == 404
    expect(page.locator("body")).to_contain_text("this link is not valid")
    expect(page.get_by_role("button")).to_have_count(0)
    assert club.get("/v1/contacts/m-1/preferences").json()["preferences"] == []
