"""Tracking in an HTML body: signed click redirects, the open pixel, a "view online" link.

It runs on every message the dispatcher sends, so it is one pass over the
tags: the body is split on ``<`` and only the pieces that start an ``<a``,
``<body`` or ``</body`` tag are looked at (a regex over the whole body,
trying its alternatives at every character, took twice as long).
Links to Courrier itself (the preference page, unsubscribe, the original)
are left as they are: they are signed already, and following them must not
count as a click. ``&amp;`` in an href is read back as ``&`` before the URL
is signed, so the redirect lands on the address the template meant.
"""

from __future__ import annotations

import html
import re

from courrier.render.links import LinkSigner

__all__ = ["track_html"]

#: the href of an ``<a>`` tag (the tag alone is searched, from after its ``a``)
_HREF = re.compile(r"""(\shref\s*=\s*)(["'])(https?://[^"'<>]*)\2""", re.IGNORECASE)
_SPACE = frozenset(" \t\r\n")
#: "view this message online", in the languages of the preference page
VIEW_ONLINE = {
    "en": "View this message online",
    "fr": "Voir ce message en ligne",
    "es": "Ver este mensaje en línea",
    "nl": "Dit bericht online bekijken",
}
_VIEW_STYLE = "font:12px sans-serif;color:#666;text-align:center;margin:0 0 8px"
_PIXEL_STYLE = "display:block;border:0;width:1px;height:1px"


def _view_online(url: str, locale: str) -> str:
    words = VIEW_ONLINE.get(locale.partition("-")[0].lower(), VIEW_ONLINE["en"])
    return f'<p style="{_VIEW_STYLE}"><a href="{url}" style="color:#666">{words}</a></p>'


def track_html(body: str, message_id: int, signer: LinkSigner, locale: str = "en") -> str:
    """``body`` with its web links through signed redirects, a pixel and a "view online" link.

    A body without ``<body>`` tags (a fragment) gets the link first and the
    pixel last.
    """
    own = signer.base_url + "/"
    pixel = f'<img src="{signer.open_pixel(message_id)}" alt="" width="1" height="1" style="{_PIXEL_STYLE}">'
    view = _view_online(signer.original(message_id), locale)
    pieces = body.split("<")
    out = [pieces[0]]
    opened = closed = False
    for piece in pieces[1:]:
        first = piece[:1]
        if first in ("a", "A") and piece[1:2] in _SPACE:
            piece = _tracked_anchor(piece, message_id, signer, own)
        elif not opened and first in ("b", "B") and _is_tag(piece, "body"):
            end = piece.find(">")
            if end >= 0:
                opened = True
                piece = piece[: end + 1] + view + piece[end + 1 :]
        elif (
            not closed and first == "/" and piece[1:2] in ("b", "B") and _is_tag(piece[1:], "body")
        ):
            closed = True
            out[-1] += pixel
        out.append(piece)
    tracked = "<".join(out)
    if not opened:
        tracked = view + tracked
    if not closed:
        tracked += pixel
    return tracked


def _is_tag(piece: str, name: str) -> bool:
    """True when ``piece`` (what follows a ``<``) starts the tag ``name``."""
    n = len(name)
    return piece[:n].lower() == name and (piece[n : n + 1] in _SPACE or piece[n : n + 1] == ">")


def _tracked_anchor(piece: str, message_id: int, signer: LinkSigner, own: str) -> str:
    """An ``<a ...>`` tag (without its ``<``) with its web link through a signed redirect."""
    end = piece.find(">")
    tag = piece if end < 0 else piece[:end]
    found = _HREF.search(tag)
    if found is None:
        return piece
    url = html.unescape(found.group(3))
    if url.startswith(own):
        return piece
    quote = found.group(2)
    start, stop = found.span()
    return f"{piece[:start]}{found.group(1)}{quote}{signer.click(message_id, url)}{quote}{piece[stop:]}"
