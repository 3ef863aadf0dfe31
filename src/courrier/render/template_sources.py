"""Where message templates come from: the shipped files, the parts made from them, the Jinja setup.

The shipped files are package data under ``courrier/render/templates/``
(see :mod:`courrier.render.templates` for their layout). For each message
file ``<kind>/<locale>/message.jinja`` the three parts the renderer asks
for (``subject.txt``, ``body.txt``, ``body.html``) are made here, so a
tenant's override of one part simply takes its place.

Environments are compiled once: one for the shipped templates, one per set
of overrides (a tenant's edits), each with ``StrictUndefined`` and the
formatting filters. The shipped templates are part of the package, as
trusted as its Python code, so they run in a plain environment: the
sandbox's checks on every attribute and call cost a third of rendering.
An environment holding any tenant's template is sandboxed (immutable), and
renders the shipped templates beside it in the sandbox too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from types import BuiltinMethodType, CodeType, MappingProxyType
from typing import Any

from jinja2 import BaseLoader, Environment, StrictUndefined, Template, TemplateNotFound
from jinja2.environment import TemplateModule
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape

try:  # markupsafe's own escaping, without wrapping the result in Markup (markupsafe 3)
    from markupsafe._speedups import _escape_inner
except ImportError:  # pragma: no cover - markupsafe without its C extension, or another version
    try:
        from markupsafe._native import _escape_inner
    except ImportError:

        def _escape_inner(s: str, /) -> str:
            return str(escape(s))


from courrier.render.booking_values import booking_values
from courrier.render.formats import FILTERS, GLOBALS, MomentPhrase

PARTS = ("subject.txt", "body.txt", "body.html")
MESSAGE = "message.jinja"
#: the source of the subject part made for each message file
SUBJECT_LINE = "{{ m.subject_line }}"
#: the sources of the body parts made for each message file, and the shared body each includes
#: (the renderer renders that body directly: the same text, without an include's extra context)
INCLUDED_BODIES = {
    '{% include "message.txt" %}': "message.txt",
    '{% include "message.html" %}': "message.html",
}
#: the attributes every dict has (its class's): any other name read on a dict is an item
_DICT_ATTRIBUTES = frozenset(dir(dict))
#: what each part of a message file becomes
_MADE_PARTS = dict(zip(PARTS, (SUBJECT_LINE, *INCLUDED_BODIES), strict=True))


@lru_cache(maxsize=1)
def default_sources() -> Mapping[str, str]:
    """The shipped templates by name, with the three parts made for each message file."""
    found: dict[str, str] = {}
    _collect(files("courrier.render") / "templates", "", found)
    for name in [n for n in found if n.endswith("/" + MESSAGE)]:
        folder = name.rpartition("/")[0]
        for part, source in _MADE_PARTS.items():
            found.setdefault(f"{folder}/{part}", source)
    return MappingProxyType(found)


def shipped_kinds() -> frozenset[str]:
    """The kinds that ship with a message file (in English at least)."""
    return frozenset(
        name.split("/")[0] for name in default_sources() if name.endswith(f"/en/{MESSAGE}")
    )


def _collect(folder: Traversable, prefix: str, found: dict[str, str]) -> None:
    for entry in folder.iterdir():
        if entry.is_dir():
            _collect(entry, f"{prefix}{entry.name}/", found)
        elif entry.name.endswith((".txt", ".html", ".jinja")):
            found[prefix + entry.name] = entry.read_text(encoding="utf-8")


class _NamedLoader(BaseLoader):
    """Templates from a mapping, each named as its own file, so errors can say where."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        self.sources = sources

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        if template not in self.sources:
            raise TemplateNotFound(template)
        return self.sources[template], template, lambda: True

    def list_templates(self) -> list[str]:
        return sorted(self.sources)


class _Context(Context):
    """Jinja's context, calling builtin methods such as ``subject.get("status")`` straight away.

    Jinja's ``call`` first asks whether the callable wants the context or
    the environment passed in, a dozen Python steps; a builtin method never
    does, and a booking message makes about ten such calls. A strings
    file's phrase (``s.when(start)``, a :class:`MomentPhrase`, two or three
    a booking message) always wants the evaluation context alone.
    """

    def call(self, obj: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        kind = type(obj)
        if kwargs or (kind is not BuiltinMethodType and kind is not MomentPhrase):
            return super().call(obj, *args, **kwargs)  # a loop's or block's call passes kwargs
        try:
            return obj(*args) if kind is BuiltinMethodType else obj(self.eval_ctx, *args)
        except StopIteration:  # what Jinja answers
            return self.environment.undefined(
                "value was undefined because a callable raised a StopIteration exception"
            )


class _PlainGlobals(Environment):
    """Each template's globals as a plain dict rather than Jinja's ``ChainMap``.

    Every rendering copies the globals into its context, and copying a
    ``ChainMap`` runs Python code per name: a quarter of what an empty
    template costs. The globals are set once, before any template is
    loaded, so a template's copy never goes stale.
    """

    context_class = _Context

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}


#: shared files whose variables Python computes for the shipped templates (None: not followed)
_IN_PYTHON: dict[str, Callable[[Mapping[str, Any]], dict[str, Any] | None]] = {
    "shared/booking.jinja": booking_values,
}


class _PythonModule(TemplateModule):
    """A shared file's module whose variables Python computed: no body, no macros."""

    def __init__(self, name: str, variables: dict[str, Any]) -> None:
        self._body_stream = []
        self.__dict__.update(variables)
        self.__name__ = name


def escaped_text(value: Any) -> str:
    """What an HTML template writes for ``{{ value }}``: ``str(escape(value))``, made faster.

    Jinja escapes each value to a Markup, then joins the pieces into one
    plain str; building a Markup per piece (a Python-level ``__new__``) was
    half of what message.html cost. The text is markupsafe's, unchanged.
    """
    if type(value) is str:
        return _escape_inner(value)
    return str(escape(value))


class _ShippedTemplate(Template):
    """A shipped template: its values are escaped by :func:`escaped_text`, and a shared
    file of ``_IN_PYTHON`` imported as a module is computed in Python."""

    @classmethod
    def from_code(
        cls,
        environment: Environment,
        code: CodeType,
        globals: MutableMapping[str, Any],
        uptodate: Callable[[], bool] | None = None,
    ) -> Template:
        """The template compiled by Jinja; the code it runs (its root, blocks and macros)
        calls ``escape`` only to write a value out, and finds it among its globals."""
        template = super().from_code(environment, code, globals, uptodate)
        template.root_render_func.__globals__["escape"] = escaped_text
        return template

    def make_module(
        self,
        vars: dict[str, Any] | None = None,
        shared: bool = False,
        locals: Mapping[str, Any] | None = None,
    ) -> TemplateModule:
        compute = _IN_PYTHON.get(self.name or "")
        if compute is not None and vars is not None:
            variables = compute(vars)
            if variables is not None:
                return _PythonModule(self.name or "", variables)
        return super().make_module(vars, shared, locals)


class _Shipped(_PlainGlobals):
    """The environment of the shipped templates (trusted, not sandboxed)."""

    template_class = _ShippedTemplate

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``obj.attribute`` as Jinja reads it: the attribute, else the item, else undefined.

        Jinja tries the attribute first; on a plain dict (the context's
        tenant, recipient, subject...) that raises and catches an
        AttributeError, a dozen times a message. A dict has no attributes
        but those of its class, so a name the class lacks goes straight
        to the item: the same answer (the rest is Jinja's own method).
        """
        if type(obj) is not dict or attribute in _DICT_ATTRIBUTES:
            try:
                return getattr(obj, attribute)
            except AttributeError:
                pass
        try:
            return obj[attribute]
        except (TypeError, LookupError, AttributeError):
            return self.undefined(obj=obj, name=attribute)


class _Sandboxed(_PlainGlobals, ImmutableSandboxedEnvironment):
    """The environment of a tenant's templates: Jinja2's immutable sandbox."""


def _environment(sources: Mapping[str, str], *, sandboxed: bool) -> Environment:
    kind = _Sandboxed if sandboxed else _Shipped
    env = kind(
        loader=_NamedLoader(dict(sources)),
        autoescape=lambda name: name is not None and name.endswith(".html"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        cache_size=-1,
    )
    env.filters.update(FILTERS)
    env.globals.update(GLOBALS)
    return env


@lru_cache(maxsize=1)
def default_environment() -> Environment:
    """The shipped templates only, trusted, not sandboxed: compiled once per process."""
    return _environment(default_sources(), sandboxed=False)


@lru_cache(maxsize=64)
def override_environment(overrides: tuple[tuple[str, str], ...]) -> ImmutableSandboxedEnvironment:
    """One sandboxed environment per set of overrides (a tenant's edits), so each compiles once."""
    env = _environment({**default_sources(), **dict(overrides)}, sandboxed=True)
    assert isinstance(env, ImmutableSandboxedEnvironment)
    return env


def complete_sets(sources: Mapping[str, str]) -> frozenset[str]:
    """The ``kind/locale`` folders holding all three parts (subject, text, HTML)."""
    folders = {name.rpartition("/")[0] for name in sources}
    return frozenset(f for f in folders if all(f"{f}/{part}" in sources for part in PARTS))
