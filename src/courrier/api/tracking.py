"""The recipient's side of tracking: pixel, click redirect, original page, downloads, unsubscribe.

No API key and no cookies: each route reads what it acts on from a token
signed for that purpose (:mod:`courrier.render.links`). A forged, altered or
foreign token is a 404 that changes nothing. Every hit is recorded by
:func:`courrier.engine.tracking.record_interaction`.

``/u/{token}`` is the RFC 8058 one-click target of ``List-Unsubscribe``: a
POST whose body says ``List-Unsubscribe=One-Click`` switches that kind off
on email for the contact, at once; a GET (a person following the link)
shows a page with that same button and a link to the preference page.
"""

from __future__ import annotations

import base64
import binascii
from html import escape
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from courrier.api.auth import get_clock, get_engine, get_settings
from courrier.console.preference_words import language_of
from courrier.console.preferences import preference_url
from courrier.domain.preferences import Preference, SetBy
from courrier.engine.outgoing import attachment_content
from courrier.engine.tracking import record_interaction
from courrier.render.links import LinkSigner
from courrier.store.db import read_only
from courrier.store.preferences import page_contact, replace_rules, rules_of, tenant_catalogue
from courrier.store.schema import message_contents, messages
from courrier.store.tenants import get_tenant

router = APIRouter(include_in_schema=False)

Token = Annotated[str, PathParam(min_length=8, max_length=4000)]
#: a transparent 1x1 GIF
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
#: the original page shows stored mail: no scripts, no forms, images over https only
ORIGINAL_POLICY = (
    "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; font-src https:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: the unsubscribe page posts back to itself only
UNSUBSCRIBE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
NOT_VALID = "this link is not valid"
PAGE_STYLE = "body{font:16px/1.5 sans-serif;max-width:36em;margin:2em auto;padding:0 1em}"


def _links(request: Request) -> LinkSigner:
    """The installation's link signer, made once per app."""
    links: LinkSigner | None = getattr(request.app.state, "links", None)
    if links is None:
        settings = get_settings(request)
        links = LinkSigner(settings.signing_key(), settings.base_url)
        request.app.state.links = links
    return links


def _payload(request: Request, purpose: str, token: str, size: int) -> list[Any]:
    """The payload of a genuine token: ``size`` items, ints first; else 404."""
    payload = _links(request).verify(purpose, token)
    if payload is None or len(payload) != size or not isinstance(payload[0], int):
        raise HTTPException(404, NOT_VALID)
    return payload


def _hit(request: Request, message_id: int, what: str, url: str | None = None) -> None:
    """Record one interaction; 404 when the message is gone."""
    with get_engine(request).begin() as conn:
        found = record_interaction(
            conn,
            message_id,
            what,
            request.headers.get("user-agent"),
            get_clock(request)(),
            url=url,
        )
    if not found:
        raise HTTPException(404, NOT_VALID)


def _private(response: Response, policy: str | None = None) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the address
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Robots-Tag"] = "noindex"
    if policy:
        response.headers["Content-Security-Policy"] = policy
    return response


@router.get("/t/o/{token}.gif")
def open_pixel(request: Request, token: Token) -> Response:
    """The open pixel: a 1x1 GIF, never cached, so each open is seen."""
    [message_id] = _payload(request, "open", token, 1)
    _hit(request, message_id, "opened")
    return _private(Response(PIXEL, media_type="image/gif"))


@router.get("/t/c/{token}")
def click(request: Request, token: Token) -> Response:
    """A tracked link: recorded, then a redirect to the URL signed in the token, nowhere else."""
    message_id, url = _payload(request, "click", token, 2)
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise HTTPException(404, NOT_VALID)
    _hit(request, message_id, "clicked", url)
    return _private(RedirectResponse(url, status_code=302))


def _message(request: Request, message_id: int) -> dict[str, Any]:
    columns = (
        messages.c.subject_line,
        message_contents.c.body_text,
        message_contents.c.body_html,
        message_contents.c.attachments,
        messages.c.locale,
    )
    query = (
        select(*columns)
        .select_from(messages.join(message_contents))
        .where(messages.c.id == message_id)
    )
    with read_only(get_engine(request)) as conn:
        row = conn.execute(query).first()
    if row is None:
        raise HTTPException(404, NOT_VALID)
    return dict(row._mapping)


def original_page(message: dict[str, Any], download: list[str]) -> str:
    """The stored mail as a page: its HTML (else its text), then its attachments' links."""
    items = "".join(
        f'<li><a href="{escape(url)}">{escape(str(item.get("filename") or "attachment"))}</a></li>'
        for item, url in zip(message["attachments"] or (), download, strict=True)
    )
    files = f'<ul class="courrier-attachments">{items}</ul>' if items else ""
    body = str(message["body_html"] or "")
    if body:
        at = body.lower().rfind("</body")
        return body[:at] + files + body[at:] if at >= 0 else body + files
    title = escape(message["subject_line"])
    return (
        f'<!doctype html><html lang="{escape(message["locale"])}"><meta charset="utf-8">'
        f"<title>{title}</title><style>{PAGE_STYLE}</style><h1>{title}</h1>"
        f'<pre style="white-space:pre-wrap">{escape(message["body_text"])}</pre>{files}</html>'
    )


@router.get("/t/v/{token}", response_class=HTMLResponse)
def original(request: Request, token: Token) -> Response:
    """The original message: reading it is the proof of a read (status accessed)."""
    [message_id] = _payload(request, "original", token, 1)
    message = _message(request, message_id)
    links = _links(request)
    download = [links.download(message_id, i) for i in range(len(message["attachments"] or ()))]
    _hit(request, message_id, "accessed")
    return _private(HTMLResponse(original_page(message, download)), ORIGINAL_POLICY)


@router.get("/t/d/{token}")
def download(request: Request, token: Token) -> Response:
    """One attachment of a message, as it was sent."""
    message_id, index = _payload(request, "download", token, 2)
    attachments = _message(request, message_id)["attachments"] or []
    if not isinstance(index, int) or not 0 <= index < len(attachments):
        raise HTTPException(404, NOT_VALID)
    item = attachments[index]
    try:
        content = attachment_content(item)
    except (binascii.Error, ValueError) as exc:
        raise HTTPException(404, NOT_VALID) from exc
    _hit(request, message_id, "downloaded")
    filename = str(item.get("filename") or "attachment").replace('"', "").replace("\\", "")
    disposition = f"attachment; filename*=utf-8''{quote(filename, safe='')}"
    response = Response(
        content, media_type=str(item.get("content_type") or "application/octet-stream")
    )
    response.headers["Content-Disposition"] = disposition
    return _private(response)


# -- one-click unsubscribe (RFC 8058) ------------------------------------------


def _unsubscribe_owner(request: Request, token: str) -> tuple[int, int, str]:
    tenant_id, contact_id, kind = _payload(request, "unsubscribe", token, 3)
    if not isinstance(contact_id, int) or not isinstance(kind, str):
        raise HTTPException(404, NOT_VALID)
    return tenant_id, contact_id, kind


#: the unsubscribe pages, in the preference page's languages
UNSUBSCRIBE_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Unsubscribe",
        "ask": "Stop receiving this notification by email?",
        "button": "Unsubscribe",
        "done_title": "Unsubscribed",
        "done": "You will no longer receive this notification by email.",
        "more": "Choose all your notifications",
    },
    "fr": {
        "title": "Se désabonner",
        "ask": "Ne plus recevoir cette notification par courriel ?",
        "button": "Me désabonner",
        "done_title": "Désabonnement enregistré",
        "done": "Vous ne recevrez plus cette notification par courriel.",
        "more": "Choisir toutes vos notifications",
    },
    "es": {
        "title": "Darse de baja",
        "ask": "¿Dejar de recibir esta notificación por correo?",
        "button": "Darme de baja",
        "done_title": "Baja registrada",
        "done": "Ya no recibirá esta notificación por correo.",
        "more": "Elegir todas sus notificaciones",
    },
    "nl": {
        "title": "Afmelden",
        "ask": "Deze melding niet meer per e-mail ontvangen?",
        "button": "Afmelden",
        "done_title": "Afgemeld",
        "done": "U ontvangt deze melding niet meer per e-mail.",
        "more": "Al uw meldingen kiezen",
    },
}


def _page(request: Request, tenant_id: int, contact_id: int, kind: str, done: bool) -> Response:
    """The page in the contact's language (else the tenant's), naming the kind as staff do."""
    with read_only(get_engine(request)) as conn:
        contact = page_contact(conn, tenant_id, contact_id)
        if contact is None:
            raise HTTPException(404, NOT_VALID)
        tenant = get_tenant(conn, tenant_id)
        known = {k.name: k for k in tenant_catalogue(conn, tenant_id, enabled_only=False)}
    language = language_of(contact["locale"], tenant.locale)
    words = UNSUBSCRIBE_WORDS[language]
    found = known.get(kind)
    name = escape(found.description if found and found.description else kind)
    more = preference_url(get_settings(request), tenant_id, contact_id)
    title = escape(words["done_title" if done else "title"])
    body = f"<p><b>{name}</b></p><p>{escape(words['done' if done else 'ask'])}</p>"
    if not done:
        body += (
            '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
            f'<button type="submit">{escape(words["button"])}</button></form>'
        )
    body += f'<p><a href="{escape(more)}">{escape(words["more"])}</a></p>'
    page = (
        f'<!doctype html><html lang="{language}"><meta charset="utf-8"><title>{title}</title>'
        f"<style>{PAGE_STYLE}</style><h1>{title}</h1>{body}</html>"
    )
    return _private(HTMLResponse(page), UNSUBSCRIBE_POLICY)


@router.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: Token) -> Response:
    """For a person who follows the link: one button that posts the one-click request."""
    tenant_id, contact_id, kind = _unsubscribe_owner(request, token)
    return _page(request, tenant_id, contact_id, kind, done=False)


@router.post("/u/{token}", response_class=HTMLResponse)
async def unsubscribe(request: Request, token: Token) -> Response:
    """RFC 8058 one-click: switch the kind off on email for the contact, in one step."""
    tenant_id, contact_id, kind = _unsubscribe_owner(request, token)
    form = await request.form()
    if form.get("List-Unsubscribe") != "One-Click":
        raise HTTPException(400, "the body must be List-Unsubscribe=One-Click")
    with get_engine(request).begin() as conn:
        if page_contact(conn, tenant_id, contact_id) is None:
            raise HTTPException(404, NOT_VALID)
        known = {k.name: k for k in tenant_catalogue(conn, tenant_id, enabled_only=False)}
        if kind in known and not known[kind].preference_optional:
            raise HTTPException(400, "this notification cannot be switched off")
        rules = rules_of(conn, tenant_id, [contact_id])[contact_id]
        kept = [rule for rule in rules if rule.key != (kind, "email")]
        off = Preference(kind, "email", False, SetBy.CONTACT)
        now = get_clock(request)()
        replace_rules(conn, tenant_id, contact_id, [*kept, off], set_by=SetBy.CONTACT, now=now)
    return _page(request, tenant_id, contact_id, kind, done=True)
