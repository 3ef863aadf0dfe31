"""A captured mail taken apart for people: headers, text, HTML and attachments.

Used by ``GET /v1/captured/{id}`` and by the captured-mail page, so both show
the same reading of the same bytes (the stdlib parser, modern policy).
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from email.message import Message


@dataclass(frozen=True)
class Part:
    """An attachment (or inline file) of a mail."""

    index: int
    filename: str | None
    content_type: str
    content: bytes


@dataclass
class MailView:
    """What a person wants to see of one mail."""

    headers: list[tuple[str, str]]
    subject: str | None
    text: str | None = None
    html: str | None = None
    parts: list[Part] = field(default_factory=list)

    def calendar(self) -> Part | None:
        """The first ``text/calendar`` part (the .ics invitation), if any."""
        return next((p for p in self.parts if p.content_type == "text/calendar"), None)


def _decoded_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _bytes_of(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def view_of(raw: bytes) -> MailView:
    """Parse ``raw`` into its headers, first text and HTML bodies, and its files."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    headers = [(name, str(value)) for name, value in message.items()]
    subject = message.get("subject")
    view = MailView(headers=headers, subject=str(subject) if subject is not None else None)
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        filename = part.get_filename()
        is_file = filename is not None or content_type == "text/calendar"
        if content_type == "text/plain" and not is_file and view.text is None:
            view.text = _decoded_text(part)
        elif content_type == "text/html" and not is_file and view.html is None:
            view.html = _decoded_text(part)
        else:
            view.parts.append(Part(len(view.parts), filename, content_type, _bytes_of(part)))
    return view
