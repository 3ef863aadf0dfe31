"""Message templates: Jinja2, one message file per notification kind and language.

Templates are package data under ``courrier/render/templates/``::

    layout.html                     shared HTML frame (logo, footer, preference link)
    message.txt, message.html       the text and HTML bodies every shipped kind shares
                                    (message.html writes layout.html's frame out itself:
                                    one pass instead of extends; tenants extend layout.html)
    strings/<locale>.jinja          words of the frame (greeting, footer) per language
    <kind>/<locale>/message.jinja   what one kind says in one language

A message file only sets variables: ``subject_line``, ``title``,
and optionally ``intro``, ``rows`` (label and value pairs), ``quote`` (a
text shown as is, e.g. a comment), ``action`` (label and URL) and
``outro``. The shared bodies lay them out as text and as HTML, so a kind's
wording lives in one place per language and the HTML escapes every value.

Rendering asks for three parts per kind and locale, ``<kind>/<locale>/``
``subject.txt``, ``body.txt`` and ``body.html``; for each message file
these are made from it. A tenant's edited templates are passed as
``overrides`` under the same part names (e.g.
``"booking.confirmation/fr/subject.txt"``, see :func:`template_overrides`)
and replace the part they name; a full set of three parts adds a language.

A tenant's templates run in Jinja2's immutable sandbox (the shipped ones,
trusted package code, run unsandboxed when a tenant has none), all with
``StrictUndefined``, so a misspelt variable fails loudly; every failure is a
:class:`TemplateError`.
:meth:`TemplateRenderer.check` catches faults at save time, with the line.

The locale falls back from ``fr_BE`` to ``fr`` to ``en``; dates and amounts
are formatted in the recipient's locale when it speaks the template's
language, else in the template's language. Times are shown in the venue's
zone: ``subject.timezone``, else ``tenant.timezone``, else UTC.

Context (mappings, or objects with these attributes)::

    tenant:     {name, from_email, reply_to, timezone, locale, address?, logo_url?}
    recipient:  {name, email, locale, timezone}
    subject:    the subject's current state (a mapping; dates as ISO text or datetimes)
    previous:   the state before this change (modifications), else None
    changes:    [{field, old, new}] top-level fields that changed, else []
    payload:    the event's own data (a comment, a link...), else {}
    people:     {contact id: name} for the contacts the subject and payload name, else {}
    event:      {type, occurred_at}
    preference_url: the recipient's preference page, else None

The renderer adds ``language``, ``venue_timezone``, ``contact_email``,
``s`` (the words of the language's ``strings`` file) and ``m`` (the kind's
message file, evaluated once per rendering and shared by the three parts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from jinja2 import Environment, Template, TemplateSyntaxError

from courrier.errors import TemplateError
from courrier.render.formats import CONTEXT_KEY, FormatSettings, babel_locale, time_zone
from courrier.render.template_sources import (
    INCLUDED_BODIES,
    MESSAGE,
    PARTS,
    SUBJECT_LINE,
    complete_sets,
    default_environment,
    default_sources,
    override_environment,
    shipped_kinds,
)

__all__ = [
    "DEFAULTS",
    "FALLBACK_LOCALE",
    "PARTS",
    "RenderedMessage",
    "TemplateRenderer",
    "TemplateSourceError",
    "complete_sets",
    "default_sources",
    "locale_candidates",
    "one_line",
    "shipped_kinds",
    "template_overrides",
    "venue_timezone",
]

FALLBACK_LOCALE = "en"
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(" {2,}")
_FORMATS_KEPT = 512
#: what the renderer itself puts in every context, besides the caller's values
DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "previous": None,
        "changes": (),
        "payload": MappingProxyType({}),
        "people": MappingProxyType({}),
        "preference_url": None,
    }
)


class TemplateSourceError(TemplateError):
    """A template that does not compile or render; ``line`` is where (1-based), when known."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """One message rendered for one recipient: a one-line subject, text and HTML bodies."""

    subject: str
    text: str
    html: str


class TemplateRenderer:
    """Renders a notification kind for a recipient; safe to share between threads."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        self._overrides = dict(overrides or {})
        self._env: Environment
        if overrides:
            sources: Mapping[str, str] = {**default_sources(), **overrides}
            self._env = override_environment(tuple(sorted(overrides.items())))
        else:
            sources = default_sources()
            self._env = default_environment()
        self._sources = sources
        self._available = complete_sets(sources)
        #: formatting settings and strings by (locale, language, zone): see :meth:`_formatting`
        self._formats: dict[tuple[str, str, str], tuple[FormatSettings, Mapping[str, Any]]] = {}
        self._languages = frozenset(
            n.removeprefix("strings/").removesuffix(".jinja")
            for n in sources
            if n.startswith("strings/")
        )
        #: compiled templates by name (the environment never reloads them)
        self._templates: dict[str, Template] = {}
        #: the template language and the message file (None when unused) by kind and locale
        self._folders: dict[tuple[str, str], tuple[str, str | None]] = {}

    @property
    def environment(self) -> Environment:
        """The Jinja2 environment (for :mod:`courrier.render.template_check`)."""
        return self._env

    def has_language(self, kind: str, language: str) -> bool:
        """True when ``kind`` has all three parts in ``language`` (``fr``, ``fr_BE``...)."""
        return f"{kind}/{language}" in self._available

    def render(self, kind: str, locale: str, context: Mapping[str, Any]) -> RenderedMessage:
        """Subject, text and HTML of ``kind`` for a recipient speaking ``locale``."""
        values = self.values(kind, locale, context)
        folder = f"{kind}/{values['language']}"
        subject, text, html = (self._render_part(f"{folder}/{part}", values) for part in PARTS)
        return RenderedMessage(subject=one_line(subject), text=text, html=html)

    def _render_part(self, name: str, values: dict[str, Any]) -> str:
        """One part; a part made from the message file is rendered without its wrapper template.

        Its subject is the message file's ``subject_line``, its bodies are the
        shared ``message.txt`` and ``message.html`` it includes: rendered
        directly they write the same text, at half the cost for the subject.
        """
        source = self._sources.get(name)
        if source == SUBJECT_LINE and "m" in values:
            try:
                return str(self._env.getattr(values["m"], "subject_line"))
            except Exception as exc:  # as the template would: StrictUndefined when it is missing
                raise TemplateError(f"{name}: {exc}") from exc
        return self._render(name, values, INCLUDED_BODIES.get(source or "", name))

    def values(
        self, kind: str, locale: str, context: Mapping[str, Any], language: str | None = None
    ) -> dict[str, Any]:
        """Everything a template of ``kind`` sees: the context, defaults and the renderer's own.

        ``language`` forces the template language (to try one part alone).
        """
        if language is None:
            language, message = self._folder(kind, locale)
        else:
            message = self._message_file(kind, language)
        tenant = context.get("tenant")
        values = {
            **self._env.globals,
            **DEFAULTS,
            **context,
            "language": language,
            "venue_timezone": venue_timezone(context),
            "contact_email": _field(tenant, "reply_to") or _field(tenant, "from_email") or "",
            "tenant_address": _field(tenant, "address"),
            "tenant_logo": _field(tenant, "logo_url"),
        }
        values[CONTEXT_KEY], values["s"] = self._formatting(locale, language, values)
        if message is not None:
            values["m"] = self._module(message, values)
        return values

    def _folder(self, kind: str, locale: str) -> tuple[str, str | None]:
        """The template language for ``locale`` and its message file, once per kind and locale."""
        found = self._folders.get((kind, locale))
        if found is None:
            language = self._template_locale(kind, locale)
            if len(self._folders) >= _FORMATS_KEPT:
                self._folders.clear()  # a bound for odd locales, as for the formats
            found = self._folders[kind, locale] = (language, self._message_file(kind, language))
        return found

    def _message_file(self, kind: str, language: str) -> str | None:
        """The message file of ``kind`` in ``language``, unless missing or unused."""
        message = f"{kind}/{language}/{MESSAGE}"
        return message if message in self._sources and self._uses_message(kind, language) else None

    def _formatting(
        self, locale: str, language: str, values: dict[str, Any]
    ) -> tuple[FormatSettings, Mapping[str, Any]]:
        """The formatting settings and the words of the strings file, once per locale and zone.

        A strings file only sets words and phrases whose dates and times
        depend on nothing but the formatting settings, so its module is
        shared by every rendering for the same recipient locale, template
        language and venue zone.
        """
        key = (locale, language, values["venue_timezone"])
        found = self._formats.get(key)
        if found is None:
            settings = self._format_settings(locale, language, key[2])
            name = f"strings/{self._strings_language(language)}.jinja"
            words = self._module(name, {**values, CONTEXT_KEY: settings})
            if len(self._formats) >= _FORMATS_KEPT:
                self._formats.clear()  # a bound for odd locales and zones; rebuilt cheaply
            found = self._formats[key] = (settings, words)
        return found

    def _uses_message(self, kind: str, language: str) -> bool:
        """False when the tenant replaced all three parts (the message file is then unused)."""
        return any(f"{kind}/{language}/{part}" not in self._overrides for part in PARTS)

    def _module(self, name: str, values: dict[str, Any]) -> _Names:
        """The variables a template sets (a message or strings file), evaluated once."""
        try:
            module = self._template(name).make_module(values, shared=True)
        except TemplateSyntaxError as exc:
            raise TemplateSourceError(f"{name}: {exc.message}", exc.lineno) from exc
        except Exception as exc:  # anything a template or a filter raises is the template's fault
            raise TemplateError(f"{name}: {exc}") from exc
        return _Names({k: v for k, v in vars(module).items() if not k.startswith("_")})

    def check(
        self,
        source: str,
        *,
        kind: str | None = None,
        part: str = "text",
        locale: str = "en",
        subject_type: str | None = None,
    ) -> None:
        """Raise :class:`TemplateSourceError` (a TemplateError) naming the line of a fault.

        Catches syntax errors and unknown filters or tests. Given the
        ``kind`` (and the ``part``: subject, text or html), also unknown
        variables and whatever fails when rendered against the kind's
        sample data (:func:`courrier.render.template_check.check_template`).
        """
        if kind is not None:
            from courrier.render.template_check import check_template  # it builds renderers

            check_template(
                source,
                kind=kind,
                part=part,
                locale=locale,
                subject_type=subject_type,
                overrides=self._overrides,
            )
            return
        try:
            self._env.compile(source)
        except TemplateSyntaxError as exc:
            raise TemplateSourceError(exc.message or str(exc), exc.lineno) from exc

    def _template_locale(self, kind: str, locale: str) -> str:
        for candidate in locale_candidates(locale):
            if f"{kind}/{candidate}" in self._available:
                return candidate
        raise TemplateError(f"no template for {kind!r} in {locale!r} nor in {FALLBACK_LOCALE!r}")

    def _strings_language(self, language: str) -> str:
        for candidate in locale_candidates(language):
            if candidate in self._languages:
                return candidate
        return FALLBACK_LOCALE

    def _format_settings(self, locale: str, language: str, zone_name: str) -> FormatSettings:
        wanted = babel_locale(locale) if locale else None
        template = babel_locale(language) or babel_locale(FALLBACK_LOCALE)
        assert template is not None  # Babel always knows English
        chosen = wanted if wanted is not None and wanted.language == template.language else template
        try:
            zone = time_zone(zone_name)
        except ValueError as exc:
            raise TemplateError(str(exc)) from exc
        return FormatSettings(locale=chosen, zone=zone)

    def _template(self, name: str) -> Template:
        found = self._templates.get(name)
        if found is None:
            found = self._templates[name] = self._env.get_template(name)
        return found

    def _render(self, name: str, values: dict[str, Any], template: str) -> str:
        """Template ``template`` rendered, any fault reported as in part ``name``.

        As ``Template.render`` does, but the template reads ``values`` in
        place: they hold the environment's globals already (:meth:`values`),
        so the two copies ``render`` makes of them would add nothing.
        """
        try:
            found = self._template(template)
            context = found.new_context(values, shared=True)
            try:
                return found.environment.concat(found.root_render_func(context))
            except Exception:
                found.environment.handle_exception()  # as render: the traceback names template lines
        except TemplateSyntaxError as exc:
            raise TemplateSourceError(f"{name}: {exc.message}", exc.lineno) from exc
        except Exception as exc:  # anything a template or a filter raises is the template's fault
            raise TemplateError(f"{name}: {exc}") from exc


#: the names ``hasattr(dict, name)`` is true of (the class's and its type's attributes)
_DICT_NAMES = frozenset(n for n in {*dir(dict), *dir(type)} if hasattr(dict, n))


class _Names(dict[str, Any]):
    """A module's variables: a mapping whose keys also read as attributes.

    Templates write ``m.title``; Jinja tries the attribute before the item,
    and on a plain dict that costs a raised AttributeError per lookup. Each
    key is also an attribute of the instance, found by Python's own lookup,
    except a key named like a dict method (``items``): that attribute stays
    the method, so templates see exactly what a dict gave them.
    """

    def __init__(self, names: Mapping[str, Any]) -> None:
        super().__init__(names)
        attributes = vars(self)
        attributes.update(names)
        for name in _DICT_NAMES.intersection(names):
            del attributes[name]


def template_overrides(kind: str, templates: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """A tenant's templates of one kind (``{locale: {subject, text, html}}``) as overrides."""
    part_names = {"subject": "subject.txt", "text": "body.txt", "html": "body.html"}
    return {
        f"{kind}/{locale}/{part_names[part]}": source
        for locale, parts in templates.items()
        for part, source in parts.items()
        if part in part_names
    }


def one_line(text: str) -> str:
    """``text`` on one line: line breaks and control characters as spaces, runs of spaces as one."""
    return _SPACES.sub(" ", _BREAKS.sub(" ", text)).strip(" ")


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
    if type(holder) is dict or isinstance(holder, Mapping):  # a dict, the usual, checked first
        return holder.get(name)
    return getattr(holder, name, None)
