"""What leaves for one message row: the envelope sender, the recipients, the bytes.

PLACEHOLDER (issue 5, identity and tracking helper): builds the mail as
before; the helper adds VERP, List-Unsubscribe, tracked links and DKIM.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from courrier.render.mime import MailAttachment, OutgoingMail, build_mime
from courrier.settings import Settings

__all__ = ["Envelope", "Outgoing", "mail_of"]


@dataclass(frozen=True)
class Envelope:
    """One SMTP transaction: MAIL FROM, RCPT TO (To, Cc and Bcc), DATA."""

    sender: str
    recipients: list[str]
    data: bytes


def mail_of(row: dict[str, Any], date: datetime) -> OutgoingMail:
    """The mail for a message row; the Message-ID is the one fixed at planning.

    ``messages.attachments`` holds ``{"filename", "content_type", "content",
    "params"?: [[k, v]...], "method"?, "encoding"?}`` items.
    """
    attachments = tuple(
        MailAttachment(
            filename=item["filename"],
            content_type=item["content_type"],
            content=_attachment_content(item),
            params=_attachment_params(item),
        )
        for item in row["attachments"] or ()
    )
    return OutgoingMail(
        message_id=row["message_id_header"],
        date=date,
        from_addr=row["from_addr"],
        from_name=row["from_name"],
        to_addr=row["address"],
        to_name=row["to_name"],
        reply_to=row["reply_to"],
        subject=row["subject_line"],
        text=row["body_text"],
        html=row["body_html"],
        attachments=attachments,
        headers=(("X-Courrier-Message", str(row["id"])),),
    )


def _attachment_content(item: dict[str, Any]) -> bytes:
    """Stored as text (an .ics), or base64 with ``"encoding": "base64"`` (any binary file)."""
    if item.get("encoding") == "base64":
        return base64.b64decode(item["content"])
    return str(item["content"]).encode("utf-8")


def _attachment_params(item: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    params = tuple((str(k), str(v)) for k, v in item.get("params") or ())
    if not params and item.get("method"):
        params = (("method", str(item["method"])),)
    return params


class Outgoing:
    """Builds the envelopes of one worker; ``load`` reads the batch's tenants' identities."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def load(self, conn: Connection, tenant_ids: Iterable[int]) -> None:
        """Read (in the claim's transaction) what the batch's tenants send with."""

    def build(self, row: dict[str, Any], date: datetime) -> Envelope:
        """The envelope and bytes of one message row (called from the send threads)."""
        recipients = [row["address"], *(row.get("cc_addrs") or ()), *(row.get("bcc_addrs") or ())]
        return Envelope(row["from_addr"], recipients, build_mime(mail_of(row, date)))
