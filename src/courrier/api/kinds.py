"""``/v1/kinds``: a tenant's notification catalogue, to read, switch, tune and extend.

- ``GET /v1/kinds``: every kind in force for the tenant (defaults with its
  changes, then its own kinds), switched on or off.
- ``GET /v1/kinds/{name}``: one kind, with the tenant's templates.
- ``PATCH /v1/kinds/{name}``: switch a kind on or off, change its timing
  (offsets), conditions, priority and channels, and its templates; a kind of
  the tenant's own may change anything but its name.
- ``POST /v1/kinds``: a kind of the tenant's own, with the same power as the
  defaults (any subject and event type, recipients, timing, conditions).

Templates are checked when saved (syntax, unknown variables, a trial
rendering on sample data): a fault is a 422 naming the field
(``templates.fr.subject``) and the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from courrier.api.auth import AppClock, CurrentTenant, DbEngine
from courrier.domain.kind_json import kind_from_json, kind_json
from courrier.domain.kinds import DEFAULT_CATALOGUE, Catalogue, NotificationKind
from courrier.errors import NotFoundError, TemplateError, ValidationError
from courrier.render.templates import TemplateRenderer, default_sources
from courrier.store.db import read_only
from courrier.store.kinds import TenantCatalogue, TenantKind, save_tenant_kind, tenant_catalogue

router = APIRouter(prefix="/v1/kinds", tags=["kinds"])

LOCALE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
PARTS = ("subject", "text", "html")
MAX_TEMPLATE = 100_000
#: what a tenant may change in a default kind (preference_optional stays: a reset is never off)
DEFAULT_CHANGEABLE = frozenset(
    {"timing", "conditions", "priority", "channels", "description", "follow_up"}
)
FOLLOW_UP = Field(
    default=None,
    description="reminders while the message is not read: {delays_minutes, cc_bcc}; null: none",
    examples=[{"delays_minutes": [1440, 4320], "cc_bcc": False}],
)

Templates = dict[str, dict[str, str]]


class KindOut(BaseModel):
    """A kind as one tenant has it."""

    name: str
    description: str
    subject_type: str
    triggers: list[str]
    recipients: list[str]
    exclude: list[str]
    channels: list[str]
    template: str
    timing: dict[str, Any]
    conditions: list[dict[str, Any]]
    priority: int
    attachments: list[str]
    preference_optional: bool
    once_per_subject: bool
    replan: bool
    cancelled_by: list[str]
    follow_up: dict[str, Any] | None = None
    enabled: bool
    custom: bool
    changed: list[str] = Field(description="fields of a default kind the tenant changed")
    templates: Templates = Field(
        description="the tenant's templates: {locale: {subject, text, html}}"
    )


class KindList(BaseModel):
    items: list[KindOut]


class KindPatch(BaseModel):
    """Changes to a kind; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    description: str | None = None
    timing: dict[str, Any] | None = Field(
        default=None,
        examples=[{"mode": "before_date", "date_field": "start", "offset_minutes": 120}],
    )
    conditions: list[dict[str, Any]] | None = None
    priority: int | None = None
    channels: list[str] | None = None
    follow_up: dict[str, Any] | None = FOLLOW_UP
    templates: dict[str, dict[str, str] | None] | None = Field(
        default=None, description="per locale: {subject, text, html}; null removes a locale"
    )
    # a kind of the tenant's own only
    triggers: list[str] | None = None
    recipients: list[str] | None = None
    exclude: list[str] | None = None
    attachments: list[str] | None = None
    cancelled_by: list[str] | None = None
    replan: bool | None = None
    once_per_subject: bool | None = None
    preference_optional: bool | None = None
    template: str | None = None


class KindIn(BaseModel):
    """A kind of the tenant's own."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(examples=["order.shipped"])
    subject_type: str = Field(examples=["order"])
    triggers: list[str] = Field(default_factory=list, examples=[["order.shipped"]])
    recipients: list[str] = Field(examples=[["buyer"]])
    exclude: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=lambda: ["email"])
    template: str | None = None
    timing: dict[str, Any] = Field(default_factory=lambda: {"mode": "now"})
    conditions: list[dict[str, Any]] = Field(default_factory=list)
    priority: int = 50
    attachments: list[str] = Field(default_factory=list)
    preference_optional: bool = True
    once_per_subject: bool = True
    replan: bool = False
    cancelled_by: list[str] = Field(default_factory=list)
    description: str = ""
    follow_up: dict[str, Any] | None = FOLLOW_UP
    enabled: bool = True
    templates: Templates = Field(default_factory=dict)


def _out(tk: TenantKind) -> KindOut:
    return KindOut(
        **kind_json(tk.kind),
        enabled=tk.enabled,
        custom=tk.custom,
        changed=sorted(tk.changed),
        templates={k: dict(v) for k, v in tk.templates.items()},
    )


def _base(request: Request) -> Catalogue:
    found = getattr(getattr(request.app.state, "intake", None), "catalogue", None)
    return found if isinstance(found, Catalogue) else DEFAULT_CATALOGUE


def _catalogue(conn: Connection, tenant_id: int, request: Request) -> TenantCatalogue:
    return tenant_catalogue(conn, tenant_id, _base(request))


@router.get("", response_model=KindList, summary="The tenant's kinds")
def list_kinds(request: Request, tenant: CurrentTenant, engine: DbEngine) -> KindList:
    """Every kind: the defaults (with the tenant's changes), then the tenant's own."""
    with read_only(engine) as conn:
        kinds = _catalogue(conn, tenant.id, request)
    return KindList(items=[_out(k) for k in kinds.kinds])


@router.get("/{name}", response_model=KindOut, summary="One kind")
def get_kind(name: str, request: Request, tenant: CurrentTenant, engine: DbEngine) -> KindOut:
    with read_only(engine) as conn:
        found = _catalogue(conn, tenant.id, request).get(name)
    if found is None:
        raise NotFoundError(f"no kind {name!r}")
    return _out(found)


def _merged_templates(
    current: Mapping[str, Mapping[str, str]], changes: Mapping[str, Mapping[str, str] | None]
) -> Templates:
    merged = {locale: dict(parts) for locale, parts in current.items()}
    for locale, parts in changes.items():
        if not LOCALE.match(locale):
            raise ValidationError(
                f"templates: {locale!r} is not a locale like 'fr' or 'fr_BE'", f"templates.{locale}"
            )
        if parts is None:
            merged.pop(locale, None)
            continue
        for part, source in parts.items():
            where = f"templates.{locale}.{part}"
            if part not in PARTS:
                raise ValidationError(f"{where}: a template part is subject, text or html", where)
            if len(source) > MAX_TEMPLATE:
                raise ValidationError(f"{where}: at most {MAX_TEMPLATE} characters", where)
        merged[locale] = {**merged.get(locale, {}), **parts}
    return merged


def _check_templates(kind: NotificationKind, templates: Templates, others: dict[str, str]) -> None:
    """Every template compiles and renders on sample data; else 422 naming it and its line."""
    renderer = TemplateRenderer(others or None)
    for locale, parts in templates.items():
        for part, source in parts.items():
            where = f"templates.{locale}.{part}"
            try:
                renderer.check(
                    source,
                    kind=kind.template_kind,
                    part=part,
                    locale=locale,
                    subject_type=kind.subject_type,
                )
            except TemplateError as exc:
                raise ValidationError(f"{where}: {exc}", where) from exc


def _needs_own_templates(kind: NotificationKind, templates: Templates) -> None:
    """A kind with no shipped templates needs a full English set (the fallback language)."""
    shipped = f"{kind.template_kind}/en/subject.txt" in default_sources()
    if shipped:
        return
    english = templates.get("en", {})
    missing = [part for part in PARTS if not english.get(part)]
    if missing:
        raise ValidationError(
            f"templates.en: a kind without shipped templates needs English ones (the fallback):"
            f" {', '.join(missing)} missing",
            "templates.en",
        )


def _overrides_except(kinds: TenantCatalogue, name: str) -> dict[str, str]:
    others = TenantCatalogue(tuple(k for k in kinds.kinds if k.kind.name != name))
    return others.template_overrides()


@router.patch("/{name}", response_model=KindOut, summary="Change a kind for this tenant")
def patch_kind(
    name: str,
    body: KindPatch,
    request: Request,
    tenant: CurrentTenant,
    engine: DbEngine,
    clock: AppClock,
) -> KindOut:
    """Switch on or off, change timing, conditions, templates (422 says what is wrong)."""
    changes = body.model_dump(exclude_unset=True)
    enabled = changes.pop("enabled", None)
    template_changes = changes.pop("templates", None) or {}
    with engine.begin() as conn:
        kinds = _catalogue(conn, tenant.id, request)
        found = kinds.get(name)
        if found is None:
            raise NotFoundError(f"no kind {name!r}")
        if found.custom:
            definition = {**kind_json(found.kind), **changes, "name": name}
            kind = kind_from_json(definition)
        else:
            for key in changes:
                if key not in DEFAULT_CHANGEABLE:
                    raise ValidationError(
                        f"{key} of a default kind cannot change; define a kind of your own"
                        " (POST /v1/kinds)",
                        key,
                    )
            base = _base(request).get(name)
            assert base is not None  # a default kind is in the base catalogue
            previous = {key: kind_json(found.kind)[key] for key in found.changed}
            definition = {**previous, **changes}
            kind = kind_from_json({**kind_json(base), **definition, "name": name})
        templates = _merged_templates(found.templates, template_changes)
        _check_templates(kind, templates, _overrides_except(kinds, name))
        if found.custom:
            _needs_own_templates(kind, templates)
        save_tenant_kind(
            conn,
            tenant.id,
            name,
            enabled=found.enabled if enabled is None else enabled,
            custom=found.custom,
            definition=definition,
            templates=templates,
            now=clock(),
        )
        saved = _catalogue(conn, tenant.id, request).get(name)
    assert saved is not None
    return _out(saved)


@router.post("", response_model=KindOut, status_code=201, summary="Define a kind of your own")
def create_kind(
    body: KindIn, request: Request, tenant: CurrentTenant, engine: DbEngine, clock: AppClock
) -> KindOut:
    """A custom kind for any subject and event type; 422 when its name is taken or it cannot work."""
    data = body.model_dump()
    enabled, templates = data.pop("enabled"), data.pop("templates")
    if data.get("template") is None:
        data.pop("template")
    kind = kind_from_json(data)
    with engine.begin() as conn:
        kinds = _catalogue(conn, tenant.id, request)
        if kinds.get(kind.name) is not None:
            raise ValidationError(
                f"a kind named {kind.name!r} exists; PATCH /v1/kinds/{kind.name} changes it", "name"
            )
        checked = _merged_templates({}, templates)
        _check_templates(kind, checked, kinds.template_overrides())
        _needs_own_templates(kind, checked)
        save_tenant_kind(
            conn,
            tenant.id,
            kind.name,
            enabled=enabled,
            custom=True,
            definition=kind_json(kind),
            templates=checked,
            now=clock(),
        )
        saved = _catalogue(conn, tenant.id, request).get(kind.name)
    assert saved is not None
    return _out(saved)
