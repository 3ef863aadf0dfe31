"""The contact's own preference page: ``GET`` and ``POST /preferences/{token}``.

Every email links here (:func:`preference_url`). The token is the tenant
and contact ids signed with the secret key (itsdangerous), so the link needs
no login and cannot be changed to reach someone else's page; it does not
expire, since it sits in mails people keep. The page lists the tenant's
kinds with a switch per channel; a kind that preferences cannot switch off
(a password reset) is shown as always sent, without a switch.

Saving writes one rule per switch the contact changed, as set by the
contact; the rules staff wrote for whole channels or every kind stay, and a
switch the contact flips overrides them for that kind. A staff member also
chooses there how they get new bookings: none, each, or a daily digest.
The page speaks the contact's language (en, fr, es, nl).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeSerializer

from courrier.api.auth import get_clock, get_engine, get_settings
from courrier.console.preference_words import CHANNEL_NAMES, WORDS, language_of
from courrier.domain.kinds import Catalogue, NotificationKind
from courrier.domain.preferences import Preference, SetBy, effective_switches, for_staff_only
from courrier.settings import Settings
from courrier.store.db import read_only
from courrier.store.preferences import (
    BOOKING_COPY_MODES,
    page_contact,
    replace_rules,
    rules_of,
    set_booking_copy,
    tenant_catalogue,
)
from courrier.store.tenants import get_tenant

router = APIRouter(prefix="/preferences", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))

SALT = "courrier.preferences"
#: the page is self-contained: no scripts, no remote content, forms post back here only
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"

Token = Annotated[str, PathParam(min_length=8, max_length=200)]


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.signing_key(), salt=SALT)


def preference_token(settings: Settings, tenant_id: int, contact_id: int) -> str:
    """The signed token naming one contact (row id) of one tenant."""
    return str(_serializer(settings).dumps([tenant_id, contact_id]))


def preference_url(settings: Settings, tenant_id: int, contact_id: int) -> str:
    """The link to the contact's preference page, for the footer of every email."""
    token = preference_token(settings, tenant_id, contact_id)
    return f"{settings.base_url.rstrip('/')}/preferences/{token}"


def _owner(request: Request, token: str) -> tuple[int, int]:
    """The (tenant, contact) a token names; 404 for a token this server did not sign."""
    try:
        tenant_id, contact_id = _serializer(get_settings(request)).loads(token)
    except (BadSignature, TypeError, ValueError):
        raise HTTPException(404, "this preference link is not valid") from None
    if not isinstance(tenant_id, int) or not isinstance(contact_id, int):
        raise HTTPException(404, "this preference link is not valid")
    return tenant_id, contact_id


def _shown(catalogue: Catalogue, *, staff: bool) -> list[NotificationKind]:
    """The kinds on the page, by name; a member does not see those only staff receive."""
    kinds = sorted(catalogue, key=lambda k: k.name)
    return [kind for kind in kinds if staff or not for_staff_only(kind)]


def _rows(kinds: list[NotificationKind], rules: list[Preference]) -> list[dict[str, Any]]:
    """One row per kind: its name, whether it may be switched off, each channel's state."""
    switches = effective_switches(rules, kinds)
    return [
        {
            "name": kind.name,
            "description": kind.description,
            "optional": kind.preference_optional,
            "channels": [
                {"name": channel, "on": switches[(kind.name, channel)]} for channel in kind.channels
            ],
        }
        for kind in kinds
    ]


def _changes(
    kinds: list[NotificationKind], rules: list[Preference], ticked: set[str], shown: set[str]
) -> dict[tuple[str, str], Preference]:
    """A contact's rule for each switch that was on the page and is not as posted.

    ``shown`` names the switches the page had (``kind|channel``), so a kind
    added since the page was opened is not switched off by its missing box.
    """
    optional = {kind.name for kind in kinds if kind.preference_optional}
    changed = {}
    for (kind, channel), now_on in effective_switches(rules, kinds).items():
        wanted = f"{kind}|{channel}" in ticked
        if f"{kind}|{channel}" in shown and kind in optional and wanted != now_on:
            changed[(kind, channel)] = Preference(kind, channel, wanted, SetBy.CONTACT)
    return changed


@router.get("/{token}", response_class=HTMLResponse)
def preference_page(request: Request, token: Token, saved: bool = False) -> HTMLResponse:
    """The contact's switches, one per kind and channel, in the contact's language."""
    tenant_id, contact_id = _owner(request, token)
    with read_only(get_engine(request)) as conn:
        contact = page_contact(conn, tenant_id, contact_id)
        if contact is None:
            raise HTTPException(404, "this preference link is not valid any more")
        tenant = get_tenant(conn, tenant_id)
        catalogue = tenant_catalogue(conn, tenant_id)
        rules = rules_of(conn, tenant_id, [contact_id])[contact_id]
    language = language_of(contact["locale"], tenant.locale)
    words = {
        key: text.format(tenant=tenant.name, name=contact["name"] or contact["external_id"])
        for key, text in WORDS[language].items()
    }
    context = {
        "language": language,
        "words": words,
        "channel_names": CHANNEL_NAMES[language],
        "kinds": _rows(_shown(catalogue, staff=_is_staff(contact)), rules),
        "staff": _is_staff(contact),
        "booking_copy": contact["booking_copy"],
        "copy_modes": BOOKING_COPY_MODES,
        "saved": saved,
        "token": token,
    }
    response = templates.TemplateResponse(request, "preferences.html", context)
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the address
    response.headers["Cache-Control"] = "no-store"
    return response


def _is_staff(contact: dict[str, Any]) -> bool:
    """Staff (a profile, or copies already chosen) may choose their copies of new bookings."""
    return bool(contact["staff_profiles"]) or contact["booking_copy"] != "off"


@router.post("/{token}")
async def save_preferences(request: Request, token: Token) -> RedirectResponse:
    """Save the switches: a ticked box is on; a kind always sent ignores what is posted."""
    tenant_id, contact_id = _owner(request, token)
    form = await request.form()
    ticked = {str(value) for value in form.getlist("on")}
    shown = {str(value) for value in form.getlist("shown")}
    copy_mode = str(form.get("booking_copy") or "")
    engine = get_engine(request)
    with engine.begin() as conn:
        contact = page_contact(conn, tenant_id, contact_id)
        if contact is None:
            raise HTTPException(404, "this preference link is not valid any more")
        if _is_staff(contact) and copy_mode in BOOKING_COPY_MODES:
            set_booking_copy(conn, tenant_id, contact_id, copy_mode)
        catalogue = tenant_catalogue(conn, tenant_id)
        rules = rules_of(conn, tenant_id, [contact_id])[contact_id]
        changed = _changes(_shown(catalogue, staff=_is_staff(contact)), rules, ticked, shown)
        kept = [rule for rule in rules if rule.key not in changed]
        replace_rules(
            conn,
            tenant_id,
            contact_id,
            [*kept, *changed.values()],
            set_by=SetBy.CONTACT,
            now=get_clock(request)(),
        )
    return RedirectResponse(f"/preferences/{token}?saved=1", status_code=303)
