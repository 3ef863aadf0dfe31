"""Reading a received mail from its bytes, whatever shape it arrives in.

A mailbox holds mail from every kind of sender: encoded-word subjects and
names (RFC 2047), RFC 2231 file names, raw 8-bit headers, charsets Python
does not know, broken multipart boundaries. :func:`parse_mail` never raises
on such input: it keeps what it can read and lists the rest as ``defects``,
so a malformed mail is still filed and never stops the reader.

The stdlib parser runs with the ``compat32`` policy, which does not raise
on bad headers; decoding is done here, step by step, with fallbacks.
"""

from __future__ import annotations

import codecs
import email
import email.policy
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any

#: Charset tried when a part names none or one Python does not know, after UTF-8.
FALLBACK_CHARSET = "windows-1252"
MESSAGE_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class ParsedAttachment:
    """One attachment or inline part, decoded."""

    position: int
    filename: str | None
    content_type: str
    disposition: str  # attachment or inline
    content_id: str | None
    content: bytes


@dataclass
class ParsedMail:
    """What could be read from one mail; ``defects`` says what could not."""

    raw_size: int
    content_hash: str
    message: Message
    message_id: str | None = None
    from_addr: str | None = None
    from_name: str | None = None
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    subject: str | None = None
    date: datetime | None = None
    references: list[str] = field(default_factory=list)  # In-Reply-To first, then References
    headers: list[tuple[str, str]] = field(default_factory=list)
    text: str | None = None
    html: str | None = None
    attachments: list[ParsedAttachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


def content_hash(raw: bytes) -> str:
    """The SHA-256 of a mail's bytes, hex: the key that deduplicates it."""
    return hashlib.sha256(raw).hexdigest()


def without_nul(text: str) -> str:
    """``text`` with NUL characters replaced: PostgreSQL stores no NUL in text or JSON."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def decode_bytes(data: bytes, charset: str | None, defects: list[str], where: str) -> str:
    """Text from ``data`` in ``charset``; an unknown charset falls back, noted as a defect."""
    name = (charset or "").strip().strip('"').lower() or None
    if name:
        try:
            codecs.lookup(name)
        except LookupError:
            defects.append(f"{where}: unknown charset {name!r}")
            name = None
    if name:
        return without_nul(data.decode(name, errors="replace"))
    try:
        return without_nul(data.decode("utf-8"))
    except UnicodeDecodeError:
        return without_nul(data.decode(FALLBACK_CHARSET, errors="replace"))


def _unescape_raw(value: str) -> str:
    """A header value with its raw 8-bit bytes (kept as surrogates by the parser) decoded."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    data = value.encode("ascii", errors="surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode(FALLBACK_CHARSET, errors="replace")


def decode_words(value: str | None, defects: list[str], where: str) -> str | None:
    """A header value with its RFC 2047 encoded words decoded, in any charset."""
    if value is None:
        return None
    value = _unescape_raw(str(value))
    value = without_nul(value)
    if "=?" not in value:
        return " ".join(value.split())
    try:
        chunks = decode_header(value)
    except Exception:  # broad on purpose: the stdlib raises several kinds on bad encoded words
        defects.append(f"{where}: encoded words that do not decode")
        return " ".join(value.split())
    text = []
    for chunk, charset in chunks:
        if isinstance(chunk, bytes):
            text.append(decode_bytes(chunk, charset, defects, where))
        else:
            text.append(chunk)
    return " ".join(without_nul("".join(text)).split())


def normalise_address(address: str) -> str:
    """The form addresses are compared in: stripped of spaces and angle brackets, lower-cased."""
    return without_nul(address).strip().strip("<>").strip().lower()


def raw_values(message: Message, name: str) -> list[str]:
    """A header's values as written (compat32 would wrap 8-bit ones in lossy ``Header`` objects)."""
    wanted = name.lower()
    return [str(value) for key, value in message.raw_items() if key.lower() == wanted]


def raw_value(message: Message, name: str) -> str | None:
    values = raw_values(message, name)
    return values[0] if values else None


def _addresses(message: Message, name: str, defects: list[str]) -> list[tuple[str, str]]:
    values = [_unescape_raw(v) for v in raw_values(message, name)]
    pairs = []
    for display, address in getaddresses(values):
        address = normalise_address(address)
        if "@" in address:
            pairs.append((decode_words(display, defects, name) or "", address))
    return pairs


def _date(value: str | None, defects: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        defects.append(f"Date: cannot read {str(value)[:60]!r}")
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _message_id(value: str | None) -> str | None:
    if not value:
        return None
    value = without_nul(str(value))
    found = MESSAGE_ID.search(str(value))
    if found:
        return found.group(0)[:998]
    stripped = str(value).strip()
    return f"<{stripped}>"[:998] if stripped and " " not in stripped else None


def read_headers(parsed: ParsedMail) -> None:
    """Fill the header fields of ``parsed`` from its message."""
    message, defects = parsed.message, parsed.defects
    parsed.headers = [
        (name, decode_words(str(value), defects, name) or "") for name, value in message.raw_items()
    ]
    sender = _addresses(message, "From", defects)
    if not sender:
        display, address = parseaddr(_unescape_raw(raw_value(message, "Sender") or ""))
        sender = [(display, normalise_address(address))] if "@" in address else []
    if sender:
        parsed.from_name, parsed.from_addr = sender[0][0] or None, sender[0][1]
    else:
        defects.append("From: no sender address")
    parsed.to = [a for _, a in _addresses(message, "To", defects)]
    parsed.cc = [a for _, a in _addresses(message, "Cc", defects)]
    parsed.subject = decode_words(raw_value(message, "Subject"), defects, "Subject")
    parsed.date = _date(raw_value(message, "Date"), defects)
    parsed.message_id = _message_id(raw_value(message, "Message-ID"))
    found = MESSAGE_ID.findall(raw_value(message, "In-Reply-To") or "")
    found += MESSAGE_ID.findall(" ".join(raw_values(message, "References")))
    parsed.references = list(dict.fromkeys(found))


def _filename(part: Message, defects: list[str], position: int) -> str | None:
    try:
        name = part.get_filename() or part.get_param("name")
    except Exception:  # broad on purpose: bad RFC 2231 parameters raise various errors
        defects.append(f"part {position}: file name that does not decode")
        return None
    if isinstance(name, tuple):  # an RFC 2231 value the stdlib left undecoded
        name = name[2]
    text = decode_words(str(name), defects, f"part {position} file name") if name else None
    return text.replace("/", "_").replace("\\", "_").strip() or None if text else None


def _leaf_bytes(part: Message) -> bytes:
    """A leaf part's decoded content; an attached message as its own bytes."""
    payload: Any = part.get_payload() if part.is_multipart() else part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, list):
        return b"".join(_message_bytes(sub) for sub in payload)
    return str(payload or "").encode("utf-8", errors="surrogateescape")


def _message_bytes(message: Message) -> bytes:
    try:
        return message.as_bytes()
    except Exception:  # broad on purpose: a broken inner message still gives its text
        return str(message.get_payload()).encode("utf-8", errors="replace")


def _leaves(part: Message) -> list[Message]:
    """The parts to read, depth first; attached messages and reports stay whole."""
    if part.get_content_maintype() == "multipart" and isinstance(part.get_payload(), list):
        leaves: list[Message] = []
        for child in part.get_payload():
            if isinstance(child, Message):
                leaves.extend(_leaves(child))
        return leaves
    return [part]


def read_body(parsed: ParsedMail) -> None:
    """Fill the text, HTML and attachments of ``parsed`` from its message's parts."""
    for position, part in enumerate(_leaves(parsed.message)):
        parsed.defects.extend(f"part {position}: {type(d).__name__}" for d in part.defects)
        content_type = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = _filename(part, parsed.defects, position)
        body_kind = {"text/plain": "text", "text/html": "html"}.get(content_type)
        wanted = body_kind and disposition != "attachment" and not filename
        if wanted and getattr(parsed, str(body_kind)) is None:
            charset = part.get_content_charset()
            text = decode_bytes(_leaf_bytes(part), charset, parsed.defects, f"part {position}")
            setattr(parsed, str(body_kind), text)
            continue
        content_id = part.get("Content-ID")
        parsed.attachments.append(
            ParsedAttachment(
                position=len(parsed.attachments),
                filename=filename,
                content_type=content_type,
                disposition="inline" if disposition == "inline" else "attachment",
                content_id=_message_id(str(content_id)) if content_id else None,
                content=_leaf_bytes(part),
            )
        )


def parse_mail(raw: bytes, *, headers_only: bool = False) -> ParsedMail:
    """Everything that can be read from ``raw``; never raises on malformed input.

    ``headers_only`` reads the header block alone (a mail over the size limit
    is recorded from its headers).
    """
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    parsed = ParsedMail(raw_size=len(raw), content_hash=content_hash(raw), message=message)
    parsed.defects.extend(type(d).__name__ for d in message.defects)
    try:
        read_headers(parsed)
    except Exception as exc:  # broad on purpose: a mail that breaks the parser is still filed
        parsed.defects.append(f"headers could not be read: {type(exc).__name__}: {exc}")
    if not headers_only:
        try:
            read_body(parsed)
        except Exception as exc:  # broad on purpose: a mail that breaks the parser is still filed
            parsed.defects.append(f"body could not be read: {type(exc).__name__}: {exc}")
    parsed.defects = list(dict.fromkeys(parsed.defects))
    return parsed
