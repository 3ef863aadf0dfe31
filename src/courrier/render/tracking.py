"""Tracking in a mail's bodies: signed click redirects, the open pixel, "view online" links.

It runs on every message the dispatcher sends, so the HTML is searched for
the three tags it touches (``<a``, ``<body``, ``</body``) with one regular
expression that starts with a literal ``<``, which the engine finds without
looking at every character; the text between tags is copied in slices.
(A Python loop over every ``<`` of a booking confirmation cost twice as
much; a regex trying its alternatives at every character, four times.)
Links to Courrier itself (the preference page, unsubscribe, the original)
are left as they are: they are signed already, and following them must not
count as a click. ``&amp;`` in an href is read back as ``&`` before the URL
is signed, so the redirect lands on the address the template meant. An
unquoted ``href=https://...`` is rewritten too, and stays unquoted: a
redirect is made of URL-safe characters only.
"""

from __future__ import annotations

import html
import re

from courrier.render.links import LinkSigner

__all__ = ["VIEW_ONLINE", "track_html", "track_text"]

#: the three tags tracking touches: ``<a`` then a space, ``<body`` or ``</body`` then a space or >
_TAG = re.compile(r"<(?:[aA][ \t\r\n]|(/?)[bB][oO][dD][yY](?=[ \t\r\n>]))")
#: the href of an ``<a>`` tag, quoted (group 3) or not (group 4: up to a space or ``>``,
#: as HTML reads it); searched from after the tag's ``a``
_HREF = re.compile(
    r"""(\shref\s*=\s*)(?:(["'])(https?://[^"'<>]*)\2|(https?://[^\s>]+))""",
    re.IGNORECASE,
)
#: "view this message online", in the languages of the preference page
VIEW_ONLINE = {
    "en": "View this message online",
    "fr": "Voir ce message en ligne",
    "es": "Ver este mensaje en línea",
    "nl": "Dit bericht online bekijken",
}
_VIEW_STYLE = "font:12px sans-serif;color:#666;text-align:center;margin:0 0 8px"
_PIXEL_STYLE = "display:block;border:0;width:1px;height:1px"


def _words(locale: str) -> str:
    return VIEW_ONLINE.get(locale.partition("-")[0].lower(), VIEW_ONLINE["en"])


def _view_online(url: str, locale: str) -> str:
    return f'<p style="{_VIEW_STYLE}"><a href="{url}" style="color:#666">{_words(locale)}</a></p>'


def track_text(text: str, original: str, locale: str = "en") -> str:
    """``text`` with a last line "View this message online: <url of the original>".

    ``original`` is the signed original page (:meth:`LinkSigner.original`),
    the same one the HTML part links to at its top.
    """
    end = "" if not text or text.endswith("\n") else "\n"
    return f"{text}{end}\n{_words(locale)}: {original}\n"


def track_html(
    body: str,
    message_id: int,
    signer: LinkSigner,
    locale: str = "en",
    *,
    original: str | None = None,
) -> str:
    """``body`` with its web links through signed redirects, a pixel and a "view online" link.

    A body without ``<body>`` tags (a fragment) gets the link first and the
    pixel last. ``original`` saves signing the original page's link again
    when the caller has it already (for the text part).
    """
    own = signer.base_url + "/"
    pixel = (
        f'<img src="{signer.open_pixel(message_id)}" alt="" width="1" height="1"'
        f' style="{_PIXEL_STYLE}">'
    )
    view = _view_online(original or signer.original(message_id), locale)
    out: list[str] = []
    copied = 0  # body[:copied] is in out
    opened = closed = False
    for tag in _TAG.finditer(body):
        start = tag.start()
        slash = tag.group(1)
        if slash is None:  # <a
            copied = _track_anchor(body, start, copied, out, message_id, signer, own)
        elif not slash:  # <body
            if opened:
                continue
            stop = _piece_end(body, start)
            end = body.find(">", start, stop)
            if end >= 0:
                opened = True
                out += (body[copied : end + 1], view)
                copied = end + 1
        elif not closed:  # </body
            closed = True
            out += (body[copied:start], pixel)
            copied = start
    out.append(body[copied:])
    tracked = "".join(out)
    if not opened:
        tracked = view + tracked
    if not closed:
        tracked += pixel
    return tracked


def _piece_end(body: str, start: int) -> int:
    """Where the text after the ``<`` at ``start`` ends: at the next ``<``, or the end."""
    stop = body.find("<", start + 1)
    return len(body) if stop < 0 else stop


def _track_anchor(
    body: str,
    start: int,
    copied: int,
    out: list[str],
    message_id: int,
    signer: LinkSigner,
    own: str,
) -> int:
    """Put the ``<a`` tag at ``start`` through a signed redirect; how far the body is copied."""
    stop = _piece_end(body, start)
    end = body.find(">", start, stop)
    found = _HREF.search(body, start + 1, stop if end < 0 else end)
    if found is None:
        return copied
    group = 3 if found.group(3) is not None else 4
    url = html.unescape(found.group(group))
    if url.startswith(own):
        return copied
    out += (body[copied : found.start(group)], signer.click(message_id, url))
    return found.end(group)
