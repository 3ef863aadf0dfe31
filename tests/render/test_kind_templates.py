"""Every kind of the default catalogue, in every shipped language: what the mails say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from courrier.domain.kinds import DEFAULT_CATALOGUE
from courrier.render.samples import sample_context
from courrier.render.templates import TemplateRenderer, shipped_kinds

LOCALES = ("en", "fr", "es", "nl")
DASH = "\u2013"  # the en dash between two times
#: the names of issue 3, every one of which ships with templates
KINDS = [
    "booking.confirmation",
    "booking.manager_notice",
    "booking.staff_copy",
    "booking.staff_digest",
    "booking.payment_reminder",
    "booking.reminder_24h",
    "booking.reminder_1h",
    "booking.reminder_30min",
    "booking.checkin_notice",
    "booking.modified",
    "booking.cancelled",
    "booking.validated",
    "booking.approval_needed",
    "booking.approved",
    "booking.rejected",
    "booking.participant_added",
    "booking.services_added",
    "visit.created",
    "visit.modified",
    "visit.cancelled",
    "visit.reminder_24h",
    "visit.checkin",
    "request.new",
    "request.assigned",
    "request.comment_public",
    "request.comment_internal",
    "request.follower_added",
    "request.status_changed",
    "member.validity_expiring",
    "member.balance_low",
    "member.password_reset",
    "resource.maintenance_start",
    "resource.maintenance_end",
]
GREETING = {
    "en": "Hello Camille Durand,",
    "fr": "Bonjour Camille Durand,",
    "es": "Hola Camille Durand:",
    "nl": "Hallo Camille Durand,",
}
#: 28 March 2026, 09:00 UTC is 10:00 in Paris (the day before summer time)
PARIS_TEN = {"en": "10:00\u202fAM", "fr": "10:00", "es": "10:00", "nl": "10:00"}


@pytest.fixture(scope="module")
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


def test_every_kind_of_the_issue_and_of_the_catalogue_has_templates() -> None:
    assert set(KINDS) <= shipped_kinds()
    assert {kind.name for kind in DEFAULT_CATALOGUE} <= shipped_kinds()


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_in_every_language(
    renderer: TemplateRenderer, kind: str, locale: str
) -> None:
    message = renderer.render(kind, locale, sample_context(kind, locale=locale))
    assert message.subject and "\n" not in message.subject
    for body in (message.text, message.html):
        assert GREETING[locale] in body
        assert "https://club.example.org/preferences/sample-token" in body
        assert "12 allée des Tilleuls" in body
    assert f'<html lang="{locale}">' in message.html
    assert '<img src="https://club.example.org/logo.png"' in message.html
    assert "{{" not in message.text and "{%" not in message.html


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(
    "kind", [k for k in KINDS if k.startswith("booking.") and k != "booking.staff_digest"]
)
def test_booking_times_are_shown_in_the_venue_zone(
    renderer: TemplateRenderer, kind: str, locale: str
) -> None:
    context = sample_context(kind, locale=locale)
    context["recipient"]["timezone"] = "America/New_York"  # the venue's hour is shown, not theirs
    message = renderer.render(kind, locale, context)
    assert PARIS_TEN[locale] in message.subject
    assert PARIS_TEN[locale] in message.text
    assert "Europe/Paris" in message.text


@pytest.mark.parametrize(
    ("locale", "hour"), [("en", "11:00\u202fAM"), ("fr", "11:00"), ("es", "11:00"), ("nl", "11:00")]
)
def test_a_reminder_after_the_dst_change_shows_the_summer_hour(
    renderer: TemplateRenderer, locale: str, hour: str
) -> None:
    data = {"subject": {"start": "2026-03-29T09:00:00+00:00", "end": "2026-03-29T10:00:00+00:00"}}
    message = renderer.render(
        "booking.reminder_24h",
        locale,
        sample_context("booking.reminder_24h", locale=locale, data=data),
    )
    assert hour in message.text and hour in message.subject
    assert "10:00" not in message.text.replace("11:00", "")


@pytest.mark.parametrize(
    ("locale", "before", "now"),
    [
        (
            "en",
            f"Before: Friday, March 27, 2026, 5:00\u202fPM {DASH} 6:30\u202fPM",
            f"Now: Saturday, March 28, 2026, 10:00\u202fAM {DASH} 11:30\u202fAM",
        ),
        (
            "fr",
            f"Avant : vendredi 27 mars 2026 à 17:00 {DASH} 18:30",
            f"Désormais : samedi 28 mars 2026 à 10:00 {DASH} 11:30",
        ),
    ],
)
def test_modification_shows_the_old_and_the_new_times(
    renderer: TemplateRenderer, locale: str, before: str, now: str
) -> None:
    message = renderer.render(
        "booking.modified", locale, sample_context("booking.modified", locale=locale)
    )
    assert before in message.text
    assert now in message.text
    assert "Court 2" in message.text and "Court 3" in message.text  # the resource moved too


def test_modification_without_a_previous_version_shows_the_new_values(
    renderer: TemplateRenderer,
) -> None:
    context = sample_context("booking.modified")
    context["previous"] = None
    message = renderer.render("booking.modified", "en", context)
    assert "Before:" not in message.text
    assert "Start: Saturday, March 28, 2026, 10:00\u202fAM" in message.text


def test_visit_modification_shows_the_old_time(renderer: TemplateRenderer) -> None:
    message = renderer.render("visit.modified", "nl", sample_context("visit.modified", locale="nl"))
    assert f"Voorheen: vrijdag 27 maart 2026 om 09:00 {DASH} 10:00" in message.text


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "April 15, 2026"),
        ("fr", "15 avril 2026"),
        ("es", "15 de abril de 2026"),
        ("nl", "15 april 2026"),
    ],
)
def test_validity_end_is_a_plain_date_in_the_reader_s_words(
    renderer: TemplateRenderer, locale: str, expected: str
) -> None:
    kind = "member.validity_expiring"
    message = renderer.render(kind, locale, sample_context(kind, locale=locale))
    assert expected in message.subject and expected in message.text


def test_balance_is_an_amount_in_the_member_s_currency(renderer: TemplateRenderer) -> None:
    kind = "member.balance_low"
    message = renderer.render(kind, "fr", sample_context(kind, locale="fr"))
    assert "Solde : 4,50\xa0€" in message.text
    assert "Seuil : 10,00\xa0€" in message.text


def test_comment_text_is_quoted_in_text_and_escaped_in_html(renderer: TemplateRenderer) -> None:
    kind = "request.comment_public"
    data: dict[str, Any] = {"payload": {"text": "Line one\n<b>Line two</b>", "author_name": "Sam"}}
    message = renderer.render(kind, "en", sample_context(kind, data=data))
    assert "> Line one\n> <b>Line two</b>" in message.text
    assert "&lt;b&gt;Line two&lt;/b&gt;" in message.html and "<b>Line" not in message.html
    assert "From: Sam" in message.text


def test_password_reset_carries_its_link(renderer: TemplateRenderer) -> None:
    kind = "member.password_reset"
    message = renderer.render(kind, "es", sample_context(kind, locale="es"))
    assert "Elegir una nueva contraseña: https://club.example.org/reset/3f9c2a" in message.text
    assert 'href="https://club.example.org/reset/3f9c2a"' in message.html


def test_status_change_names_the_new_status_in_each_language(renderer: TemplateRenderer) -> None:
    kind = "request.status_changed"
    said = {
        locale: renderer.render(kind, locale, sample_context(kind, locale=locale)).subject
        for locale in LOCALES
    }
    assert said["en"].startswith("Request resolved")
    assert said["fr"].startswith("Demande résolue")
    assert said["es"].startswith("Solicitud resuelta")
    assert said["nl"].startswith("Verzoek opgelost")


def test_digest_lists_the_day_s_bookings(renderer: TemplateRenderer) -> None:
    kind = "booking.staff_digest"
    message = renderer.render(kind, "en", sample_context(kind))
    assert message.subject == "Bookings of Saturday, March 28, 2026: 2"
    assert f"10:00\u202fAM {DASH} 11:30\u202fAM: Court 3 · Camille Durand · B-1042" in message.text
    assert f"4:00\u202fPM {DASH} 5:00\u202fPM: Court 3 · Noah Petit · B-1043" in message.text


def test_no_preference_link_when_none_is_given(renderer: TemplateRenderer) -> None:
    context = sample_context("booking.reminder_1h")
    context["preference_url"] = None
    message = renderer.render("booking.reminder_1h", "en", context)
    assert "Choose which notifications" not in message.text + message.html


def test_a_tenant_override_of_a_new_language_uses_the_english_frame() -> None:
    renderer = TemplateRenderer(
        {
            "booking.reminder_1h/de/subject.txt": "Erinnerung {{ subject.id }}",
            "booking.reminder_1h/de/body.txt": "Hallo",
            "booking.reminder_1h/de/body.html": (
                "{% extends 'layout.html' %}{% block content %}Hallo{% endblock %}"
            ),
        }
    )
    context = sample_context("booking.reminder_1h", locale="de")
    message = renderer.render("booking.reminder_1h", "de", context)
    assert message.subject == "Erinnerung B-1042"
    assert "Choose which notifications you receive" in message.html


@pytest.mark.parametrize(
    ("locale", "subject", "title"),
    [
        ("en", "Booking registered: ", "Your booking is registered (on the waiting list)."),
        (
            "fr",
            "Réservation enregistrée : ",
            "Votre réservation est enregistrée (sur liste d\u2019attente).",
        ),
    ],
)
def test_a_booking_on_the_waiting_list_is_not_said_to_be_confirmed(
    renderer: TemplateRenderer, locale: str, subject: str, title: str
) -> None:
    kind = "booking.confirmation"
    context = sample_context(kind, locale=locale, data={"subject": {"status": "waiting"}})
    message = renderer.render(kind, locale, context)
    assert message.subject.startswith(subject)
    assert title in message.text


ZONES = ["Europe/Paris", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe"]


@settings(max_examples=80, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(ZONES),
)
def test_any_start_is_shown_at_the_venue_s_wall_clock_time(moment: datetime, zone: str) -> None:
    data = {
        "subject": {
            "start": moment.isoformat(),
            "end": (moment + timedelta(hours=1)).isoformat(),
            "timezone": zone,
        }
    }
    context = sample_context("booking.reminder_1h", locale="fr", data=data)
    message = TemplateRenderer().render("booking.reminder_1h", "fr", context)
    local = moment.astimezone(ZoneInfo(zone))
    assert f"Début : {format_date(local, 'full', locale='fr')} à {local:%H:%M}" in message.text
    assert f"Fuseau horaire : {zone}" in message.text


@settings(max_examples=40, deadline=None)
@given(name=st.text(min_size=1, max_size=30).filter(str.strip), kind=st.sampled_from(KINDS))
def test_any_resource_or_person_name_is_escaped_in_every_kind_s_html(name: str, kind: str) -> None:
    data = {"recipient": {"name": name}, "subject": {"resource": {"id": "R", "name": name}}}
    message = TemplateRenderer().render(kind, "en", sample_context(kind, data=data))
    assert f"Hello {escape(name)}," in message.html
    assert f"Hello {name}," in message.text
