"""The words of a follow-up: "Reminder: <subject>", a line saying why, the link, the original.

A follow-up is written once, when its original is sent, from the original's
stored subject and bodies (no template: whatever made the original, a kind's
template or a direct message posted through the API, the reminder reads the
same). Its wording follows the original's locale (en, fr, es, nl; English
otherwise).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

__all__ = ["FollowUpText", "follow_up_text"]


@dataclass(frozen=True)
class _Words:
    subject: str  # the original subject follows
    intro: str  # {n}: this follow-up's number; {total}: how many there are
    link: str


WORDS = {
    "en": _Words(
        "Reminder: ",
        "This is a reminder ({n} of {total}) of the message below, which has not been read yet.",
        "Read the original message",
    ),
    "fr": _Words(
        "Rappel : ",
        "Ceci est un rappel ({n} sur {total}) du message ci-dessous, qui n'a pas encore été lu.",
        "Lire le message original",
    ),
    "es": _Words(
        "Recordatorio: ",
        "Este es un recordatorio ({n} de {total}) del mensaje de abajo, que aún no se ha leído.",
        "Leer el mensaje original",
    ),
    "nl": _Words(
        "Herinnering: ",
        "Dit is een herinnering ({n} van {total}) aan het onderstaande bericht,"
        " dat nog niet is gelezen.",
        "Lees het oorspronkelijke bericht",
    ),
}

_BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class FollowUpText:
    subject: str
    text: str
    html: str | None


def follow_up_text(
    locale: str,
    n: int,
    total: int,
    subject: str,
    text: str,
    html: str | None,
    original_url: str | None,
) -> FollowUpText:
    """Follow-up ``n`` of ``total``: the original's subject, text and HTML, introduced.

    ``original_url`` is the signed link to the original (following it stops
    the remaining follow-ups); None leaves the link out.
    """
    words = WORDS.get(locale.split("_")[0].lower(), WORDS["en"])
    intro = words.intro.format(n=n, total=total)
    head = [intro]
    if original_url:
        head.append(f"{words.link}: {original_url}")
    new_text = "\n".join(head) + "\n\n" + text
    new_html = None
    if html is not None:
        block = f"<p>{escape(intro)}</p>"
        if original_url:
            block += f'<p><a href="{escape(original_url)}">{escape(words.link)}</a></p>'
        block += "<hr>"
        found = _BODY_TAG.search(html)
        new_html = html[: found.end()] + block + html[found.end() :] if found else block + html
    return FollowUpText(words.subject + subject, new_text, new_html)
