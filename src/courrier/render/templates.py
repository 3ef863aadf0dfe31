"""Message templates: sandboxed Jinja2, one set per notification kind and language.

Templates are package data under ``courrier/render/templates/``::

    layout.html                          shared HTML frame (extended by every body.html)
    <kind>/<locale>/subject.txt          one line; line breaks become spaces
    <kind>/<locale>/body.txt             plain text, not escaped
    <kind>/<locale>/body.html            HTML, autoescaped

A tenant's edited templates are passed as ``overrides`` under the same
names (e.g. ``"booking.confirmation/fr/subject.txt"``), on top of the
defaults. Templates run in Jinja2's immutable sandbox (no access to
``__class__`` and friends, no changing the values passed in) with
``StrictUndefined``, so a misspelt variable fails loudly instead of
printing nothing; every failure is a :class:`TemplateError`.

The locale falls back from ``fr_BE`` to ``fr`` to ``en`` for the choice of
template; dates and amounts are formatted in the recipient's locale when it
speaks the template's language (Belgian French conventions in French
text), and in the template's language otherwise. Times are shown in the
venue's zone: ``subject.timezone``, else ``tenant.timezone``, else UTC.

Context the intake passes for a booking notification (mappings or objects
with these attributes)::

    tenant:    {name, from_email, reply_to, timezone, locale}
    recipient: {name, email, locale, timezone}
    subject:   {id, start (aware datetime), end (aware datetime), timezone,
                resource: {name, ...} | None, status, ...}   (a mapping)
    event:     {type, occurred_at}

The renderer adds ``language`` (the template's language, for ``<html
lang>``) and ``venue_timezone`` (the zone name times are shown in).

Shipped kinds: ``booking.confirmation`` in en, fr, es, nl.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Any

from jinja2 import DictLoader, StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from courrier.errors import TemplateError
from courrier.render.formats import CONTEXT_KEY, FILTERS, FormatSettings, babel_locale, time_zone

FALLBACK_LOCALE = "en"
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(" {2,}")
PARTS = ("subject.txt", "body.txt", "body.html")


class TemplateSourceError(TemplateError):
    """A template that does not compile; ``line`` is where (1-based), when known."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """One message rendered for one recipient: a one-line subject, text and HTML bodies."""

    subject: str
    text: str
    html: str


@lru_cache(maxsize=1)
def default_sources() -> Mapping[str, str]:
    """The shipped templates, by name relative to the templates folder (read once)."""
    found: dict[str, str] = {}
    _collect(files("courrier.render") / "templates", "", found)
    return MappingProxyType(found)


def _collect(folder: Traversable, prefix: str, found: dict[str, str]) -> None:
    for entry in folder.iterdir():
        if entry.is_dir():
            _collect(entry, f"{prefix}{entry.name}/", found)
        elif entry.name.endswith((".txt", ".html")):
            found[prefix + entry.name] = entry.read_text(encoding="utf-8")


def _environment(sources: Mapping[str, str]) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        loader=DictLoader(dict(sources)),
        autoescape=lambda name: name is not None and name.endswith(".html"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        cache_size=-1,
    )
    env.filters.update(FILTERS)
    return env


@lru_cache(maxsize=1)
def _default_environment() -> ImmutableSandboxedEnvironment:
    """One environment shared by every renderer without overrides: compiled once per process."""
    return _environment(default_sources())


@lru_cache(maxsize=64)
def _override_environment(overrides: tuple[tuple[str, str], ...]) -> ImmutableSandboxedEnvironment:
    """One environment per set of overrides (a tenant's edits), so each compiles once."""
    return _environment({**default_sources(), **dict(overrides)})


class TemplateRenderer:
    """Renders a notification kind for a recipient; safe to share between threads."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        if overrides:
            sources = {**default_sources(), **overrides}
            self._env = _override_environment(tuple(sorted(overrides.items())))
        else:
            sources = dict(default_sources())
            self._env = _default_environment()
        self._available = complete_sets(sources)

    def render(self, kind: str, locale: str, context: Mapping[str, Any]) -> RenderedMessage:
        """Subject, text and HTML of ``kind`` for a recipient speaking ``locale``."""
        language = self._template_locale(kind, locale)
        values = {
            **context,
            CONTEXT_KEY: self._format_settings(locale, language, context),
            "language": language,
            "venue_timezone": venue_timezone(context),
        }
        subject, text, html = (self._render(f"{kind}/{language}/{part}", values) for part in PARTS)
        return RenderedMessage(subject=one_line(subject), text=text, html=html)

    def check(self, source: str) -> None:
        """Raise :class:`TemplateSourceError` (a TemplateError) naming the line of a fault.

        Catches syntax errors and unknown filters or tests, before anything is saved.
        """
        try:
            self._env.compile(source)
        except TemplateSyntaxError as exc:
            raise TemplateSourceError(exc.message or str(exc), exc.lineno) from exc

    def _template_locale(self, kind: str, locale: str) -> str:
        for candidate in locale_candidates(locale):
            if f"{kind}/{candidate}" in self._available:
                return candidate
        raise TemplateError(f"no template for {kind!r} in {locale!r} nor in {FALLBACK_LOCALE!r}")

    def _format_settings(
        self, locale: str, language: str, context: Mapping[str, Any]
    ) -> FormatSettings:
        wanted = babel_locale(locale) if locale else None
        template = babel_locale(language) or babel_locale(FALLBACK_LOCALE)
        assert template is not None  # Babel always knows English
        chosen = wanted if wanted is not None and wanted.language == template.language else template
        try:
            zone = time_zone(venue_timezone(context))
        except ValueError as exc:
            raise TemplateError(str(exc)) from exc
        return FormatSettings(locale=chosen, zone=zone)

    def _render(self, name: str, values: Mapping[str, Any]) -> str:
        try:
            return self._env.get_template(name).render(values)
        except TemplateSyntaxError as exc:
            raise TemplateSourceError(f"{name}: {exc.message}", exc.lineno) from exc
        except Exception as exc:  # anything a template or a filter raises is the template's fault
            raise TemplateError(f"{name}: {exc}") from exc


def one_line(text: str) -> str:
    """``text`` on one line: line breaks and control characters as spaces, runs of spaces as one."""
    return _SPACES.sub(" ", _BREAKS.sub(" ", text)).strip(" ")


def complete_sets(sources: Mapping[str, str]) -> frozenset[str]:
    """The ``kind/locale`` folders holding all three parts (subject, text, HTML)."""
    folders = {name.rpartition("/")[0] for name in sources}
    return frozenset(f for f in folders if all(f"{f}/{part}" in sources for part in PARTS))


def locale_candidates(locale: str) -> list[str]:
    """Template locales to try, best first: ``fr-be`` -> ``["fr_BE", "fr", "en"]``."""
    language, _, region = locale.replace("-", "_").partition("_")
    found: list[str] = []
    if language and region:
        found.append(f"{language.lower()}_{region.upper()}")
    if language:
        found.append(language.lower())
    found.append(FALLBACK_LOCALE)
    return found


def venue_timezone(context: Mapping[str, Any]) -> str:
    """The zone times are shown in: the subject's, else the tenant's, else UTC."""
    for holder in (context.get("subject"), context.get("tenant")):
        zone = _field(holder, "timezone")
        if isinstance(zone, str) and zone:
            return zone
    return "UTC"


def _field(holder: Any, name: str) -> Any:
    if isinstance(holder, Mapping):
        return holder.get(name)
    return getattr(holder, name, None)
