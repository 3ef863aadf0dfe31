"""Telling member mail from machine mail: delivery reports (bounces) and auto-replies.

A bounce must reach deliverability with its failed recipients and status
codes, and a vacation reply must not count as a bounce nor be filed as
something a member wrote. Standards first:

- RFC 3464 delivery status notifications (``multipart/report;
  report-type=delivery-status``): one block per recipient with
  ``Final-Recipient``, ``Action``, ``Status`` and ``Diagnostic-Code``;
- RFC 3834 auto-replies: ``Auto-Submitted`` other than ``no``, and the
  common ``X-Autoreply`` / ``X-Autorespond`` / ``Precedence: auto_reply``;

then flufl.bounce's heuristics for the many non-standard bounce formats.
No I/O here: the filing code stores what this finds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message

from flufl.bounce import all_failures

from courrier.inbound.parsing import MESSAGE_ID, normalise_address, without_nul

STATUS_CODE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
DAEMON_SENDERS = ("mailer-daemon@", "postmaster@")


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient a report is about."""

    address: str
    action: str | None  # failed, delayed, delivered, relayed, expanded
    status: str | None  # RFC 3463, e.g. 5.1.1
    diagnostic: str | None


@dataclass
class Classification:
    """What kind of mail this is; for a bounce, who failed and which mail it was."""

    kind: str  # member, bounce, auto_reply
    recipients: list[FailedRecipient] = field(default_factory=list)
    original_message_id: str | None = None


def _field(block: Message, name: str) -> str | None:
    value = block.get(name)
    if value is None:
        return None
    return " ".join(without_nul(str(value)).split()) or None


def _typed_address(value: str | None) -> str | None:
    """``rfc822; user@example.org`` → ``user@example.org``."""
    if not value:
        return None
    address = normalise_address(value.partition(";")[2] if ";" in value else value)
    return address if "@" in address else None


def _status_blocks(report: Message) -> list[Message]:
    payload = report.get_payload()
    if isinstance(payload, list):
        return [b for b in payload if isinstance(b, Message)]
    return []


def _original_message_id(message: Message) -> str | None:
    """The Message-ID of the mail a report returns (``message/rfc822`` or its headers)."""
    for part in message.walk():
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                found = MESSAGE_ID.search(str(inner[0].get("Message-ID", "")))
                if found:
                    return found.group(0)
        if part.get_content_type() == "text/rfc822-headers":
            text = part.get_payload(decode=True)
            if isinstance(text, bytes):
                match = re.search(rb"(?im)^message-id:\s*(<[^<>\s]+>)", text)
                if match:
                    return match.group(1).decode("ascii", errors="replace")
    return None


def delivery_status(message: Message) -> list[FailedRecipient]:
    """The per-recipient blocks of an RFC 3464 report; empty when it is not one."""
    recipients = []
    for part in message.walk():
        if part.get_content_type() not in (
            "message/delivery-status",
            "message/global-delivery-status",
        ):
            continue
        for block in _status_blocks(part):
            address = _typed_address(_field(block, "Final-Recipient")) or _typed_address(
                _field(block, "Original-Recipient")
            )
            if address is None:
                continue  # the per-message block, or a recipient we cannot name
            status = _field(block, "Status")
            found = STATUS_CODE.search(status or "")
            recipients.append(
                FailedRecipient(
                    address=address,
                    action=(_field(block, "Action") or "").lower() or None,
                    status=found.group(0) if found else status,
                    diagnostic=_field(block, "Diagnostic-Code"),
                )
            )
    return recipients


def _heuristic_failures(message: Message) -> list[FailedRecipient]:
    """flufl.bounce's reading of a non-standard bounce."""
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # broad on purpose: a heuristic that trips on odd input finds nothing
        return []
    found = []
    for addresses, action in ((permanent, "failed"), (temporary, "delayed")):
        for raw in sorted(addresses):
            address = normalise_address(raw.decode("utf-8", errors="replace"))
            if "@" in address:
                found.append(FailedRecipient(address, action, None, None))
    return found


def is_auto_reply(message: Message) -> bool:
    """RFC 3834 ``Auto-Submitted`` and the common vacation-responder headers."""
    submitted = str(message.get("Auto-Submitted", "")).strip().lower()
    if submitted and not submitted.startswith("no"):
        return True
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return True
    return str(message.get("Precedence", "")).strip().lower() == "auto_reply"


def _looks_like_bounce(message: Message, sender: str | None) -> bool:
    if message.get_content_type() == "multipart/report":
        return True
    return bool(sender) and sender.startswith(DAEMON_SENDERS)  # type: ignore[union-attr]


def classify(message: Message, sender: str | None) -> Classification:
    """Bounce, auto-reply or member mail; a bounce with its failed recipients."""
    if _looks_like_bounce(message, sender):
        recipients = delivery_status(message) or _heuristic_failures(message)
        if recipients or message.get_content_type() == "multipart/report":
            return Classification("bounce", recipients, _original_message_id(message))
    if is_auto_reply(message):
        return Classification("auto_reply")
    return Classification("member")
