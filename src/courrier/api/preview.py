"""``POST /v1/kinds/{name}/preview``: a kind rendered with sample data, as a recipient would get it.

Every kind (default or the tenant's own, with the tenant's edited
templates) renders against built-in sample data for its subject type
(:mod:`courrier.render.samples`); the caller may replace parts of it
(``subject``, ``previous``, ``payload``, ``recipient``) and choose the
locale. The answer holds the subject line, the text and HTML bodies, and
the calendar file when the kind sends one. Nothing is stored or sent.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from courrier.api.auth import AppClock, CurrentTenant, DbEngine
from courrier.domain.kinds import DEFAULT_CATALOGUE, Catalogue
from courrier.engine.calendar_files import CALENDAR_ATTACHMENTS, calendar_file, calendar_method
from courrier.engine.composer import tenant_context
from courrier.errors import NotFoundError, TemplateError, ValidationError
from courrier.render.samples import sample_context
from courrier.render.templates import TemplateRenderer, locale_candidates
from courrier.store.db import read_only
from courrier.store.kinds import tenant_catalogue

router = APIRouter(prefix="/v1/kinds", tags=["kinds"])

Locale = Annotated[str, StringConstraints(min_length=1, max_length=16, pattern=r"^[A-Za-z_-]+$")]


class PreviewData(BaseModel):
    """Values that replace parts of the sample (each merged over it, one level deep)."""

    model_config = ConfigDict(extra="forbid")

    subject: dict[str, Any] | None = None
    previous: dict[str, Any] | None = None
    payload: dict[str, Any] | None = None
    recipient: dict[str, Any] | None = None


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locale: Locale | None = Field(default=None, examples=["fr"])
    data: PreviewData | None = None


class PreviewOut(BaseModel):
    kind: str
    locale: str  # the language of the template used (after fallback)
    subject: str
    text: str
    html: str
    ics: str | None  # the calendar file, for kinds that send one


def _base_catalogue(request: Request) -> Catalogue:
    intake = getattr(request.app.state, "intake", None)
    found = getattr(intake, "catalogue", None)
    return found if isinstance(found, Catalogue) else DEFAULT_CATALOGUE


@router.post("/{name}/preview", response_model=PreviewOut)
def preview_kind(
    name: str,
    request: Request,
    tenant: CurrentTenant,
    engine: DbEngine,
    clock: AppClock,
    body: PreviewIn | None = None,
) -> PreviewOut:
    """Render kind ``name`` with sample data (404 for an unknown kind, 422 when it cannot)."""
    body = body or PreviewIn()
    with read_only(engine) as conn:
        kinds = tenant_catalogue(conn, tenant.id, _base_catalogue(request))
    found = kinds.get(name)
    if found is None:
        raise NotFoundError(f"no kind {name!r}")
    kind = found.kind
    locale = body.locale or tenant.locale
    data = body.data.model_dump(exclude_none=True) if body.data else {}
    context = sample_context(
        kind.template_kind, subject_type=kind.subject_type, locale=locale, data=data
    )
    context["tenant"] = {**context["tenant"], **tenant_context(tenant)}
    renderer = TemplateRenderer(kinds.template_overrides())
    try:
        rendered = renderer.render(kind.template_kind, locale, context)
        language = next(
            c for c in locale_candidates(locale) if renderer.has_language(kind.template_kind, c)
        )
        ics = None
        version = 2 if context["previous"] else 1  # a change raises the calendar sequence
        for attachment in kind.attachments:
            if attachment in CALENDAR_ATTACHMENTS:
                method = calendar_method(attachment, context["subject"])
                recipient = context["recipient"]
                who = (str(recipient.get("email") or "member@example.org"), recipient.get("name"))
                ics = calendar_file(
                    method, context["subject"], tenant, version, rendered, who, clock()
                )["content"]
                break
    except TemplateError as exc:
        raise ValidationError(f"the kind does not render: {exc}", "templates") from exc
    return PreviewOut(
        kind=kind.name,
        locale=language,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        ics=ics,
    )
