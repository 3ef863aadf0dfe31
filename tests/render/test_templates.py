"""TemplateRenderer: languages, dates in the venue's zone, sandbox, escaping, errors with lines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from courrier.errors import TemplateError
from courrier.render.samples import sample_context
from courrier.render.template_sources import escaped_text
from courrier.render.templates import (
    PARTS,
    TemplateRenderer,
    TemplateSourceError,
    default_sources,
    one_line,
)

KIND = "booking.confirmation"


def context(**subject_changes: Any) -> dict[str, Any]:
    subject: dict[str, Any] = {
        "type": "booking",
        "id": "B-1001",
        "start": datetime(2026, 3, 3, 8, 0, tzinfo=UTC),  # 09:00 in Paris, 03:00 in New York
        "end": datetime(2026, 3, 3, 10, 30, tzinfo=UTC),  # 11:30 in Paris
        "timezone": "Europe/Paris",
        "resource": {"name": "Cessna 172 F-GABC"},
        "status": "confirmed",
    }
    subject.update(subject_changes)
    return {
        "tenant": {
            "name": "Aéroclub de l'Ouest",
            "from_email": "club@example.org",
            "reply_to": "office@example.org",
            "timezone": "Europe/Paris",
            "locale": "fr",
        },
        "recipient": {
            "name": "Zoë Martin",
            "email": "zoe@example.com",
            "locale": "en",
            "timezone": "America/New_York",
        },
        "subject": subject,
        "event": {"type": "booking.created", "occurred_at": datetime(2026, 3, 1, 9, 0, tzinfo=UTC)},
    }


@pytest.fixture(scope="module")
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


LANGUAGES = {
    "en": ("Booking confirmed", "Hello Zoë Martin", "Tuesday, March 3, 2026", "9:00", "11:30"),
    "fr": ("Réservation confirmée", "Bonjour Zoë Martin", "mardi 3 mars 2026", "09:00", "11:30"),
    "es": ("Reserva confirmada", "Hola Zoë Martin", "martes, 3 de marzo de 2026", "9:00", "11:30"),
    "nl": ("Reservering bevestigd", "Hallo Zoë Martin", "dinsdag 3 maart 2026", "09:00", "11:30"),
}


@pytest.mark.parametrize("locale", sorted(LANGUAGES))
def test_each_language_renders_in_its_words_with_times_in_the_venue_zone(
    renderer: TemplateRenderer, locale: str
) -> None:
    title, greeting, day, start, end = LANGUAGES[locale]
    message = renderer.render(KIND, locale, context())
    assert message.subject.startswith(title)
    assert "Cessna 172 F-GABC" in message.subject
    assert start in message.subject
    for body in (message.text, message.html):
        assert greeting in body
        assert day in body
        assert start in body and end in body
        assert "3:00" not in body and "03:00" not in body  # not the recipient's New York time
        assert "B-1001" in body
        assert "Cessna 172 F-GABC" in body
        assert "Aéroclub de l" in body
        assert "office@example.org" in body
        assert ".ics" not in body  # says "invitation attached" in words, checked per language below
    assert f'<html lang="{locale}">' in message.html


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("en", "calendar invitation is attached"),
        ("fr", "invitation d\u2019agenda est jointe"),
        ("es", "invitación de calendario va adjunta"),
        ("nl", "agenda-uitnodiging is bijgevoegd"),
    ],
)
def test_each_language_says_the_invitation_is_attached(
    renderer: TemplateRenderer, locale: str, words: str
) -> None:
    message = renderer.render(KIND, locale, context())
    assert words in message.text
    assert words in message.html


def test_venue_zone_decides_the_hours_shown(renderer: TemplateRenderer) -> None:
    message = renderer.render(KIND, "en", context(timezone="America/New_York"))
    assert "3:00" in message.text
    assert "5:30" in message.text
    assert "America/New_York" in message.text


def test_regional_locale_uses_its_language_and_its_own_conventions(
    renderer: TemplateRenderer,
) -> None:
    canadian = renderer.render(KIND, "fr_CA", context())
    assert canadian.subject.startswith("Réservation confirmée")
    assert "09 h 00" in canadian.text  # French of Canada writes hours its own way
    assert "Bonjour" in renderer.render(KIND, "fr-BE", context()).text


@pytest.mark.parametrize("locale", ["de", "pt_BR", "", "not a locale"])
def test_unknown_language_falls_back_to_english(renderer: TemplateRenderer, locale: str) -> None:
    message = renderer.render(KIND, locale, context())
    assert message.subject.startswith("Booking confirmed")
    assert "Tuesday, March 3, 2026" in message.text


def test_booking_without_resource_still_renders(renderer: TemplateRenderer) -> None:
    message = renderer.render(KIND, "en", context(resource=None))
    assert message.subject == "Booking confirmed: Mar 3, 2026 9:00\u202fAM"
    assert "What:" not in message.text


def test_html_escapes_names_and_text_keeps_them(renderer: TemplateRenderer) -> None:
    values = context(resource={"name": "<b>Court</b>"})
    values["recipient"]["name"] = "<script>alert(1)</script>"
    message = renderer.render(KIND, "en", values)
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in message.html
    assert "&lt;b&gt;Court&lt;/b&gt;" in message.html
    assert "Hello <script>alert(1)</script>," in message.text


@settings(max_examples=60, deadline=None)
@given(name=st.text(min_size=1, max_size=40).filter(str.strip))
def test_any_name_is_escaped_in_html(name: str) -> None:
    values = context()
    values["recipient"]["name"] = name
    message = TemplateRenderer().render(KIND, "en", values)
    assert f"Hello {escape(name)}," in message.html
    assert f"Hello {name}," in message.text


@settings(max_examples=200, deadline=None)
@given(
    value=st.one_of(
        st.text(),
        st.text().map(Markup),
        st.integers(),
        st.decimals(allow_nan=False),
        st.none(),
        st.lists(st.text(), max_size=3),
    )
)
def test_shipped_html_escapes_each_value_as_markupsafe_does(value: Any) -> None:
    written = escaped_text(value)
    assert written == str(escape(value))
    assert type(written) is str


def test_subject_is_one_line_whatever_the_values(renderer: TemplateRenderer) -> None:
    message = renderer.render(KIND, "en", context(resource={"name": "Court 1\r\nBcc: x@y.z\n"}))
    assert "\r" not in message.subject and "\n" not in message.subject
    assert "Court 1 Bcc: x@y.z ," in message.subject


def test_missing_variable_is_an_error_not_a_blank() -> None:
    renderer = TemplateRenderer({f"{KIND}/en/body.txt": "Hello {{ recipient.nmae }}"})
    with pytest.raises(TemplateError, match="nmae"):
        renderer.render(KIND, "en", context())


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ recipient.__class__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ subject.start.__class__ }}",
        "{% set _ = tenant.update({'name': 'Evil'}) %}",
        "{{ subject.pop('id') }}",
    ],
)
def test_sandbox_refuses_internal_attributes_and_changes(source: str) -> None:
    renderer = TemplateRenderer({f"{KIND}/en/body.txt": source})
    values = context()
    with pytest.raises(TemplateError):
        renderer.render(KIND, "en", values)
    assert values == context()


def test_a_tenants_templates_run_in_the_sandbox_with_the_shipped_ones_beside_them() -> None:
    """Only the shipped templates alone (trusted package code) render unsandboxed."""
    tenant = TemplateRenderer({f"{KIND}/en/body.txt": "Hi {{ recipient.name }}"})
    assert isinstance(tenant.environment, ImmutableSandboxedEnvironment)
    assert not isinstance(TemplateRenderer().environment, ImmutableSandboxedEnvironment)


def test_override_replaces_one_part_and_keeps_the_others() -> None:
    renderer = TemplateRenderer(
        {f"{KIND}/fr/subject.txt": "Vol {{ subject.id }} le {{ subject.start|date('short') }}"}
    )
    message = renderer.render(KIND, "fr", context())
    assert message.subject == "Vol B-1001 le 03/03/2026"
    assert "Bonjour Zoë Martin" in message.text


def test_an_edited_template_is_used_at_once() -> None:
    """A renderer holds its compiled templates; an edit comes with new overrides."""
    name = f"{KIND}/en/body.txt"
    first = TemplateRenderer({name: "One {{ subject.id }}"})
    assert first.render(KIND, "en", context()).text == "One B-1001"
    edited = TemplateRenderer({name: "Two {{ subject.id }}"})
    assert edited.render(KIND, "en", context()).text == "Two B-1001"
    assert first.render(KIND, "en", context()).text == "One B-1001"
    assert "Zoë Martin" in TemplateRenderer().render(KIND, "en", context()).text


def test_a_tenants_template_can_call_the_strings_phrases() -> None:
    """``s.when``, ``s.brief`` and ``s.day`` write an instant in the template's language."""
    renderer = TemplateRenderer(
        {
            f"{KIND}/fr/subject.txt": "{{ s.brief(subject.start) }}",
            f"{KIND}/fr/body.txt": "{{ s.when(subject.start) }} / {{ s.day(subject.end) }}",
            f"{KIND}/fr/body.html": "<p>{{ s.when(subject.start) }}</p>",
        }
    )
    message = renderer.render(KIND, "fr", context())
    assert message.subject == "3 mars 2026 à 09:00"
    assert message.text == "mardi 3 mars 2026 à 09:00 / mardi 3 mars 2026"
    assert message.html == "<p>mardi 3 mars 2026 à 09:00</p>"


def test_made_parts_render_as_the_templates_they_stand_for() -> None:
    """The renderer renders a message file's parts without their wrappers: the same text."""
    renderer = TemplateRenderer()
    for kind in ("booking.confirmation", "booking.modified", "request.new", "visit.created"):
        for locale in ("en", "nl"):
            sample = sample_context(kind, locale=locale)
            values = renderer.values(kind, locale, sample)
            parts = [
                renderer.environment.get_template(f"{kind}/{locale}/{part}").render(values)
                for part in PARTS
            ]
            message = renderer.render(kind, locale, sample)
            assert [one_line(parts[0]), *parts[1:]] == [message.subject, message.text, message.html]


def test_the_shared_html_body_keeps_the_frame_of_layout_html() -> None:
    """message.html writes layout.html's frame out (one pass, no extends): the two stay alike."""
    sources = default_sources()
    head, rest = sources["layout.html"].split("{% block title %}{% endblock %}")
    middle, tail = rest.split("{% block content %}{% endblock %}\n")
    body = sources["message.html"].partition("#}\n")[2]
    assert body.startswith(head + "{{ m.title }}" + middle)
    assert body.endswith(tail)


def test_message_names_read_as_attributes_except_dict_methods() -> None:
    """``m.title`` is the message file's title; ``m.items`` stays the mapping's method."""
    renderer = TemplateRenderer(
        {
            f"{KIND}/en/message.jinja": '{% set subject_line = "S" %}{% set title = "T" %}{% set items = "x" %}',
            f"{KIND}/en/subject.txt": "{{ m.title }} {{ m.items is callable }} {{ m['items'] }}",
        }
    )
    assert renderer.render(KIND, "en", context()).subject == "T True x"


def test_the_shipped_environment_reads_a_dict_as_jinja_does() -> None:
    """An item by name, a dict method by its name, a missing name undefined (StrictUndefined)."""
    environment = TemplateRenderer().environment
    state = {"name": "Court 1", "items": "x"}
    assert environment.getattr(state, "name") == "Court 1"
    assert environment.getattr(state, "items") == state.items
    with pytest.raises(UndefinedError):
        str(environment.getattr(state, "missing"))


def test_a_language_needs_all_three_parts_to_be_chosen() -> None:
    renderer = TemplateRenderer({f"{KIND}/de/subject.txt": "Buchung bestätigt"})
    assert renderer.render(KIND, "de", context()).subject.startswith("Booking confirmed")


def test_a_new_language_can_be_added_by_overrides() -> None:
    german = {
        f"{KIND}/de/subject.txt": "Buchung bestätigt: {{ subject.start|date('full') }}",
        f"{KIND}/de/body.txt": "Hallo {{ recipient.name }}",
        f"{KIND}/de/body.html": "{% extends 'layout.html' %}{% block content %}Hallo{% endblock %}",
    }
    message = TemplateRenderer(german).render(KIND, "de_AT", context())
    assert message.subject == "Buchung bestätigt: Dienstag, 3. März 2026"
    assert message.text == "Hallo Zoë Martin"
    assert '<html lang="de">' in message.html


@pytest.mark.parametrize(
    ("source", "locale", "expected"),
    [
        ("{{ 12.5|money('EUR') }}", "fr", "12,50\xa0€"),
        ("{{ 1234|money('USD') }}", "en", "$1,234.00"),
        ("{{ subject.start|datetime('short', tz='Asia/Tokyo') }}", "en", "3/3/26, 5:00\u202fPM"),
        ("{{ subject.start|time }}", "nl", "09:00"),
        ("{{ '2026-03-03T08:00:00+00:00'|date('long') }}", "es", "3 de marzo de 2026"),
        ("{{ subject.start|datetime('EEEE HH:mm') }}", "fr", "mardi 09:00"),
    ],
)
def test_filters_format_in_the_recipient_locale(source: str, locale: str, expected: str) -> None:
    renderer = TemplateRenderer({f"{KIND}/{locale}/body.txt": source})
    assert renderer.render(KIND, locale, context()).text == expected


def test_naive_time_is_a_template_error() -> None:
    renderer = TemplateRenderer()
    with pytest.raises(TemplateError, match="time zone"):
        renderer.render(KIND, "en", context(start=datetime(2026, 3, 3, 9, 0)))


def test_unknown_kind_is_a_template_error(renderer: TemplateRenderer) -> None:
    with pytest.raises(TemplateError, match="no template"):
        renderer.render("booking.teleported", "en", context())


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("Hello\n{{ recipient.name }\n", 2),
        ("Hello\n{{ recipient.name }}\n{% if subject.id %}\nno end\n", 4),
        ("{% for x in %}{% endfor %}", 1),
    ],
)
def test_check_reports_a_syntax_error_with_its_line(
    renderer: TemplateRenderer, source: str, line: int
) -> None:
    with pytest.raises(TemplateSourceError) as caught:
        renderer.check(source)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"line {line}: ")


def test_check_reports_an_unknown_filter_with_its_line(renderer: TemplateRenderer) -> None:
    with pytest.raises(TemplateError) as caught:
        renderer.check("Hello\n\n{{ subject.start|strftime('%H') }}")
    assert isinstance(caught.value, TemplateSourceError)
    assert caught.value.line == 3
    assert "strftime" in str(caught.value)


def test_check_accepts_every_shipped_template(renderer: TemplateRenderer) -> None:
    sources = default_sources()
    assert f"{KIND}/fr/message.jinja" in sources
    assert all(f"{KIND}/{lang}/{part}" in sources for lang in LANGUAGES for part in PARTS)
    for source in sources.values():
        renderer.check(source)


def test_module_variables_read_as_attributes_except_names_of_dict_attributes() -> None:
    """``m.title`` is the variable; ``m.items`` stays what a plain dict gives (its method)."""
    from courrier.render.templates import _Names

    found = {"title": "T", "items": "I", "mro": "M", "get": "G", "fromkeys": "F", "x_1": 1}
    names = _Names(found)
    assert dict(names) == found
    assert vars(names) == {"title": "T", "x_1": 1}
    assert callable(names.items) and callable(names.get)
