"""The signed preference page: a contact switches kinds off, and the history says so."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.engine import Engine

from courrier.console.preferences import preference_url
from courrier.settings import Settings
from courrier.store.contacts import get_contact
from tests.api.conftest import Caller, booking, member


def page_path(settings: Settings, engine: Engine, caller: Caller, external_id: str) -> str:
    with engine.connect() as conn:
        contact = get_contact(conn, caller.tenant.id, external_id)
    assert contact is not None
    url = preference_url(settings, caller.tenant.id, contact["id"])
    assert url.startswith("http://courrier.test/preferences/")
    return url.removeprefix("http://courrier.test")


def ticked(html: str) -> set[str]:
    return set(re.findall(r'name="on" value="([^"]+)" checked', html))


def submit(caller: Caller, path: str, on: set[str] | list[str], **fields: str) -> Any:
    """Post the form as a browser does: every switch the page showed, and the ticked ones."""
    shown = re.findall(r'name="shown" value="([^"]+)"', caller.client.get(path).text)
    data = {"shown": shown, "on": sorted(on), **fields}
    return caller.client.post(path, data=data, follow_redirects=False)


def test_the_page_shows_every_kind_switched_on_at_first(
    alice: Caller, settings: Settings, engine: Engine
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    response = alice.client.get(page_path(settings, engine, alice, "m-17"))
    assert response.status_code == 200
    assert "Vos notifications de Alpha" in response.text  # Camille reads French
    assert "Camille Martin" in response.text
    assert "booking.confirmation|email" in ticked(response.text)
    assert "member.password_reset|email" not in response.text  # no switch for it...
    assert "ne peut pas être désactivée" in response.text  # ...but a word saying why
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_unticking_a_box_switches_the_kind_off_for_the_contact(
    alice: Caller, settings: Settings, engine: Engine
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    path = page_path(settings, engine, alice, "m-17")
    on = ticked(alice.client.get(path).text) - {"booking.confirmation|email"}
    saved = submit(alice, path, on)
    assert saved.status_code == 303
    page = alice.client.get(saved.headers["location"])
    assert "Vos choix sont enregistrés" in page.text
    assert "booking.confirmation|email" not in ticked(page.text)
    rules = alice.get("/v1/contacts/m-17/preferences").json()["preferences"]
    assert [(r["kind"], r["channel"], r["enabled"], r["set_by"]) for r in rules] == [
        ("booking.confirmation", "email", False, "contact")
    ]
    # Ticking it again turns it back on.
    submit(alice, path, on | {"booking.confirmation|email"})
    assert "booking.confirmation|email" in ticked(alice.client.get(path).text)


def test_a_staff_rule_for_every_kind_shows_and_the_contact_can_override_one(
    alice: Caller, settings: Settings, engine: Engine
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    everything_off = {"preferences": [{"kind": "*", "enabled": False}]}
    alice.put("/v1/contacts/m-17/preferences", json=everything_off)
    path = page_path(settings, engine, alice, "m-17")
    assert "booking.confirmation|email" not in ticked(alice.client.get(path).text)
    submit(alice, path, ["booking.confirmation|email"])
    rules = alice.get("/v1/contacts/m-17/preferences").json()["preferences"]
    assert [(r["kind"], r["channel"], r["enabled"], r["set_by"]) for r in rules] == [
        ("*", "*", False, "staff"),
        ("booking.confirmation", "email", True, "contact"),
    ]


def test_a_tampered_or_foreign_token_is_refused(
    alice: Caller, bob: Caller, settings: Settings, engine: Engine
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    path = page_path(settings, engine, alice, "m-17")
    token = path.rsplit("/", 1)[1]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert alice.client.get(f"/preferences/{forged}").status_code == 404
    assert alice.client.post(f"/preferences/{forged}", data={"on": []}).status_code == 404
    other_key = Settings(**{**settings.model_dump(), "secret_key": "another-secret"})
    with engine.connect() as conn:
        contact = get_contact(conn, alice.tenant.id, "m-17")
    assert contact is not None
    foreign = preference_url(other_key, alice.tenant.id, contact["id"])
    assert alice.client.get(foreign.removeprefix("http://courrier.test")).status_code == 404


def test_the_page_speaks_the_contacts_language_with_english_as_fallback(
    alice: Caller, settings: Settings, engine: Engine
) -> None:
    alice.put("/v1/contacts/m-1", json=member(locale="nl_BE"))
    alice.put("/v1/contacts/m-2", json=member(locale="de"))
    assert (
        "Uw meldingen van Alpha" in alice.client.get(page_path(settings, engine, alice, "m-1")).text
    )
    assert (
        "Your notifications from Alpha"
        in alice.client.get(page_path(settings, engine, alice, "m-2")).text
    )


def test_staff_choose_their_copies_of_new_bookings_on_the_page(
    alice: Caller, settings: Settings, engine: Engine
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    alice.put("/v1/contacts/s-1", json=member(locale="en", staff_profiles=["secretary"]))
    member_page = alice.client.get(page_path(settings, engine, alice, "m-17")).text
    assert 'name="booking_copy"' not in member_page
    assert "booking.manager_notice" not in member_page  # only staff get it
    path = page_path(settings, engine, alice, "s-1")
    staff_page = alice.client.get(path).text
    assert "booking.manager_notice|email" in staff_page
    assert 'value="off" checked' in staff_page
    on = ticked(alice.client.get(path).text)
    submit(alice, path, on, booking_copy="digest")
    assert alice.get("/v1/contacts/s-1").json()["booking_copy"] == "digest"
    assert alice.get("/v1/contacts/s-1/preferences").json()["preferences"] == []
    # A member without a staff profile cannot give themselves copies of everyone's bookings.
    member_path = page_path(settings, engine, alice, "m-17")
    submit(alice, member_path, on, booking_copy="each")
    assert alice.get("/v1/contacts/m-17").json()["booking_copy"] == "off"


def test_every_mail_links_to_the_recipients_own_page(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    [planned] = [
        m
        for m in alice.post("/v1/events", json=booking()).json()["messages"]
        if m["kind"] == "booking.confirmation"
    ]
    mail = alice.get(f"/v1/messages/{planned['id']}").json()
    [link] = set(
        re.findall(r"http://courrier\.test(/preferences/[A-Za-z0-9._-]+)", mail["body_text"])
    )
    assert link in str(mail["body_html"])
    page = alice.client.get(link)
    assert page.status_code == 200
    assert "Camille Martin" in page.text


def test_a_kind_added_after_the_page_was_opened_is_not_switched_off(
    alice: Caller, settings: Settings, engine: Engine
) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    path = page_path(settings, engine, alice, "m-17")
    on = ticked(alice.client.get(path).text)
    shown_then = [s for s in on if s != "booking.reminder_1h|email"]  # not on the page yet
    data = {"shown": shown_then, "on": [s for s in shown_then if s != "booking.confirmation|email"]}
    alice.client.post(path, data=data)
    rules = alice.get("/v1/contacts/m-17/preferences").json()["preferences"]
    assert [(r["kind"], r["enabled"]) for r in rules] == [("booking.confirmation", False)]
