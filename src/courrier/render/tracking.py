"""Tracking in an HTML body: signed click redirects, the open pixel, a "view online" link.

One compiled pattern, one pass: :func:`track_html` finds every ``<a ...
href="http(s)://...">``, the ``<body>`` tag and the ``</body>`` tag in a
single ``re.sub``, because it runs on every message the dispatcher sends.
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

_TRACKED = re.compile(
    r"""(?P<a><a\s[^>]*?\bhref\s*=\s*)(?P<q>["'])(?P<url>https?://[^"'<>]*)(?P=q)"""
    r"|(?P<open><body\b[^>]*>)|(?P<close></body\s*>)",
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
    seen = {"open": False, "close": False}

    def replace(found: re.Match[str]) -> str:
        if found.group("a") is not None:
            url = html.unescape(found.group("url"))
            if url.startswith(own):
                return found.group(0)
            quote = found.group("q")
            return f"{found.group('a')}{quote}{signer.click(message_id, url)}{quote}"
        if found.group("open") is not None and not seen["open"]:
            seen["open"] = True
            return found.group("open") + view
        if found.group("close") is not None and not seen["close"]:
            seen["close"] = True
            return pixel + found.group("close")
        return found.group(0)

    tracked = _TRACKED.sub(replace, body)
    if not seen["open"]:
        tracked = view + tracked
    if not seen["close"]:
        tracked += pixel
    return tracked
