"""Checking a template before it is saved: syntax, unknown variables, and a trial rendering.

A tenant's template that fails would fail when a mail is due, hours later
and for a real person; so :func:`check_template` fails it at save time,
naming the line: a syntax error or an unknown filter, a variable no
message has (``{{ recipent.name }}``), or anything that breaks when the
template is rendered against the kind's sample data
(:mod:`courrier.render.samples`), such as a field the subject does not have.

A kind about a subject type Courrier has no sample for (an integrator's
own) is checked up to unknown top-level variables, unless the caller
gives sample data for its subject.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping
from typing import Any

from jinja2 import meta

from courrier.errors import TemplateError
from courrier.render.samples import SUBJECT_TYPES, sample_context, subject_type_of
from courrier.render.templates import DEFAULTS, TemplateRenderer, TemplateSourceError

#: the part names of the API and the template files they stand for
PART_FILES = {"subject": "subject.txt", "text": "body.txt", "html": "body.html"}
#: every top-level name a message template may use
KNOWN_NAMES = frozenset(
    {
        "tenant",
        "recipient",
        "subject",
        "event",
        "language",
        "venue_timezone",
        "contact_email",
        "tenant_address",
        "tenant_logo",
        "m",
        "s",
        *DEFAULTS,
    }
)


def check_template(
    source: str,
    *,
    kind: str,
    part: str,
    locale: str = "en",
    subject_type: str | None = None,
    overrides: Mapping[str, str] | None = None,
    sample: Mapping[str, Any] | None = None,
) -> None:
    """Raise :class:`TemplateSourceError` naming the line when ``source`` would not render.

    ``part`` is ``subject``, ``text`` or ``html`` (or a file name such as
    ``body.txt``); ``overrides`` are the tenant's other templates, which the
    trial rendering uses; ``sample`` replaces parts of the sample context.
    """
    file = PART_FILES.get(part, part)
    if file not in PART_FILES.values():
        raise TemplateError(f"unknown template part {part!r}: subject, text or html")
    base = TemplateRenderer(overrides)
    base.check(source)
    _check_names(base, source)
    chosen = subject_type or subject_type_of(kind)
    if chosen not in SUBJECT_TYPES.values() and not sample:
        return  # nothing known about this subject's fields: names checked, no trial
    name = f"{kind}/{locale}/{file}"
    trial = TemplateRenderer({**(overrides or {}), name: source})
    context = sample_context(kind, subject_type=chosen, locale=locale, data=sample)
    values = trial.values(kind, locale, context, language=locale)
    try:
        trial.environment.get_template(name).render(values)
    except Exception as exc:  # anything the template raises is the template's fault
        message = getattr(exc, "message", None) or str(exc)
        raise TemplateSourceError(message, _line_in(exc, name)) from exc


def _check_names(renderer: TemplateRenderer, source: str) -> None:
    """An unknown top-level variable is refused, with the line it first appears on."""
    env = renderer.environment
    unknown = meta.find_undeclared_variables(env.parse(source)) - KNOWN_NAMES - set(env.globals)
    if unknown:
        name = sorted(unknown)[0]
        raise TemplateSourceError(f"unknown variable {name!r}", _first_line(source, name))


def _first_line(source: str, name: str) -> int | None:
    pattern = re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)")
    for number, line in enumerate(source.splitlines(), start=1):
        if pattern.search(line):
            return number
    return None


def _line_in(exc: BaseException, name: str) -> int | None:
    """The line of template ``name`` where ``exc`` was raised (Jinja rewrites the traceback)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == name]
    return frames[-1].lineno if frames else None
