"""Templates are checked when saved: syntax, unknown variables and a trial rendering, with the line."""

from __future__ import annotations

import pytest

from courrier.errors import TemplateError
from courrier.render.template_check import check_template
from courrier.render.templates import TemplateRenderer, TemplateSourceError


@pytest.mark.parametrize(
    ("source", "line", "words"),
    [
        ("Hello {{ recipent.name }}", 1, "unknown variable 'recipent'"),
        ("Hello\n\n{{ subject.start|date('full') }}\n{{ subject.strat|date }}", 4, "strat"),
        (
            "{{ subject.id }}\n{% for p in subject.participants %}{{ p.name }}{% endfor %}",
            2,
            "name",
        ),
        ("Link:\n{{ payload.link }}", 2, "link"),
        ("{{ subject.start|date('full') }\n", 1, "unexpected"),
    ],
)
def test_a_faulty_template_is_refused_with_its_line(source: str, line: int, words: str) -> None:
    with pytest.raises(TemplateSourceError) as caught:
        TemplateRenderer().check(source, kind="booking.reminder_1h", part="text")
    assert caught.value.line == line
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "part", "source"),
    [
        (
            "booking.reminder_1h",
            "subject",
            "Rappel {{ subject.resource.name }} {{ subject.start|time }}",
        ),
        ("member.password_reset", "text", "{{ recipient.name }}: {{ payload.link }}"),
        ("request.comment_public", "text", "{{ payload.author_name }} wrote: {{ payload.text }}"),
        ("booking.modified", "text", "{% for c in changes %}{{ c.field }} {{ c.old }}{% endfor %}"),
        (
            "booking.modified",
            "text",
            "Was {{ previous.start|datetime }}, now {{ subject.start|datetime }}",
        ),
        (
            "visit.created",
            "html",
            "{% extends 'layout.html' %}{% block content %}{{ subject.host_name }}{% endblock %}",
        ),
    ],
)
def test_a_good_template_passes(kind: str, part: str, source: str) -> None:
    TemplateRenderer().check(source, kind=kind, part=part, locale="fr")


def test_a_field_the_kind_does_not_have_is_refused_though_another_kind_has_it() -> None:
    source = "{{ payload.link }}"
    check_template(source, kind="member.password_reset", part="text")
    with pytest.raises(TemplateSourceError, match="link"):
        check_template(source, kind="booking.confirmation", part="text")


def test_an_integrator_subject_is_checked_for_names_only_unless_a_sample_is_given() -> None:
    source = "Order {{ subject.total|money('EUR') }} for {{ recipient.name }}"
    check_template(source, kind="shop.order_paid", part="text", subject_type="order")
    with pytest.raises(TemplateSourceError, match="recipeint"):
        check_template("{{ recipeint }}", kind="shop.order_paid", part="text", subject_type="order")
    with pytest.raises(TemplateSourceError, match="not an amount"):
        check_template(
            source,
            kind="shop.order_paid",
            part="text",
            subject_type="order",
            sample={"subject": {"total": "twelve"}},
        )


def test_a_new_language_can_be_checked_one_part_at_a_time() -> None:
    check_template(
        "Erinnerung: {{ subject.start|date('full') }}",
        kind="booking.reminder_1h",
        part="subject",
        locale="de",
    )


def test_an_unknown_part_is_refused() -> None:
    with pytest.raises(TemplateError, match="unknown template part"):
        check_template("x", kind="booking.reminder_1h", part="footer")


def test_without_a_kind_check_only_compiles() -> None:
    TemplateRenderer().check("{{ anything.at_all }}")
