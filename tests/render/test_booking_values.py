"""booking_values: the variables of shared/booking.jinja, computed in Python, as the file sets them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from jinja2 import Template

from courrier.errors import TemplateError
from courrier.render.booking_values import booking_values
from courrier.render.samples import sample_context
from courrier.render.template_sources import default_environment
from courrier.render.templates import TemplateRenderer, shipped_kinds, template_overrides

SHARED = "shared/booking.jinja"
KINDS = sorted(
    k for k in shipped_kinds() if k.startswith("booking.") and k != "booking.staff_digest"
)
LOCALES = ("en", "fr", "nl_BE", "de")
#: sample data replaced, each a shape the Python values follow
VARIANTS: dict[str, dict[str, Any]] = {
    "sample": {},
    "no resource": {"subject": {"resource": None}},
    "no amount": {"subject": {"amount": None}},
    "no currency": {"subject": {"currency": None}},
    "services as dicts": {"payload": {"services": [{"name": "Racket"}, {"name": "Balls"}]}},
    "no services": {"subject": {"services": []}},
    "waiting": {"subject": {"status": "waiting"}},
    "unknown status": {"subject": {"status": "odd"}},
    "booker in people": {"subject": {"booker_name": None}},
    "moved to the next day": {"previous": {"start": "2026-03-27T20:00:00+00:00"}},
    "dates as datetimes": {
        "subject": {
            "start": datetime(2026, 7, 1, 16, 15, tzinfo=UTC),
            "end": datetime(2026, 7, 2, 9, 0, tzinfo=UTC),
        }
    },
    "markup in names": {"subject": {"resource": {"name": "<b>R&D</b>"}, "booker_name": "A & B"}},
}


def names(renderer: TemplateRenderer, kind: str, locale: str, variant: str) -> dict[str, Any]:
    """What a message file that imports shared/booking.jinja with context passes it."""
    context = sample_context(kind, locale=locale, data=VARIANTS[variant])
    return {**default_environment().globals, **renderer.values(kind, locale, context)}


def in_jinja(values: dict[str, Any]) -> dict[str, Any]:
    """The file's variables as Jinja evaluates it (its macro left out)."""
    template = default_environment().get_template(SHARED)
    module = Template.make_module(template, values, True, {})
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "span"}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", KINDS)
def test_python_sets_what_the_jinja_file_sets(kind: str, locale: str, variant: str) -> None:
    values = names(TemplateRenderer(), kind, locale, variant)
    computed = booking_values(values)
    assert computed is not None
    expected = in_jinja(values)
    assert computed == expected
    assert [type(v) for v in computed.values()] == [type(expected[k]) for k in computed]


@pytest.mark.parametrize(
    "data",
    [
        {"subject": {"resource": "Court 3"}},  # not a dict: Jinja finds no name
        {"subject": {"resource": {"id": "R-1"}}},  # no name
        {"subject": {"amount": "a lot"}},  # not an amount
        {"payload": {"services": [{"id": 1}]}},  # services without names
        {"payload": {"services": {"name": "Racket"}}},  # not a list
    ],
)
def test_other_shapes_are_left_to_the_jinja_file(data: dict[str, Any]) -> None:
    values = names(TemplateRenderer(), "booking.confirmation", "en", "sample")
    for key, changes in data.items():
        values[key] = {**values[key], **changes}
    assert booking_values(values) is None


def test_an_odd_shape_fails_as_the_jinja_file_does_in_the_sandbox() -> None:
    kind = "booking.confirmation"
    context = sample_context(kind, data={"subject": {"resource": "Court 3"}})
    sandboxed = TemplateRenderer(template_overrides("booking.other", {"en": {"text": "x"}}))
    errors = []
    for renderer in (TemplateRenderer(), sandboxed):
        with pytest.raises(TemplateError) as caught:
            renderer.render(kind, "en", context)
        errors.append(str(caught.value))
    assert errors[0] == errors[1]


def test_shipped_templates_read_only_the_variables_python_sets() -> None:
    env = default_environment()
    values = names(TemplateRenderer(), "booking.modified", "fr", "sample")
    computed = booking_values(values)
    assert computed is not None
    for name, source in env.loader.sources.items():  # type: ignore[union-attr]
        if SHARED in source:
            assert set(re.findall(r"\bb\.([a-z_]+)", source)) <= set(computed), name
