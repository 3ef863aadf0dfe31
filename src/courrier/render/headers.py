"""Mail header lines built as text, fast: dates, addresses, encoded words, folding.

This is the header half of :mod:`courrier.render.mime`. Nothing here goes
through ``email.message``: each header is formatted directly as one or more
lines of at most 78 characters (RFC 5322 section 2.1.1), joined by CRLF.

Safety rules, because header values come from integrators and recipients:

* a control character (CR, LF, TAB, NUL, C1 controls, U+2028/9) in a value
  becomes a space, so a value can never start a new header line;
* an address must be a plain ``local@domain`` without whitespace or control
  characters, or :class:`~courrier.errors.ValidationError` is raised;
* non-ASCII text (and anything looking like an encoded word) is written as
  RFC 2047 encoded words of at most 75 characters, never splitting a UTF-8
  sequence between two words.
"""

from __future__ import annotations

import re
from binascii import b2a_base64
from datetime import datetime
from functools import lru_cache

from courrier.errors import ValidationError

MAX_LINE = 78
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_WORDS = re.compile(r" *[^ ]+")
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+")
_PRINTABLE = re.compile(r"[ -~]+")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")
_MESSAGE_ID = re.compile(rf"<{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*>")
_HEADER_NAME = re.compile(r"[!-9;-~]+")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_Q_PHRASE = {  # bytes written as themselves in a "Q" encoded word of a phrase (RFC 2047 5.3)
    **{ord(c): c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/"},
    ord(" "): "_",
}
#: each byte as written in a "Q" encoded word of a phrase: itself, ``_`` for a space, or ``=XX``
_Q_BYTES = [_Q_PHRASE.get(byte) or f"={byte:02X}" for byte in range(256)]
_WORD_PREFIX = "=?utf-8?b?"
_WORD_OVERHEAD = len(_WORD_PREFIX) + 2  # the prefix and the closing "?="
_MAX_WORD = 75  # RFC 2047 section 2


def utf8(text: str) -> bytes:
    """``text`` in UTF-8; a lone surrogate (JSON allows ``"\\ud800"``) becomes U+FFFD."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text).encode("utf-8")


def valid_unicode(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so it can be encoded."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def clean_text(value: str) -> str:
    """``value`` with every control character turned into a space, ends stripped."""
    if _CONTROL.search(value) is not None:
        value = _CONTROL.sub(" ", value)
    return value.strip(" ")


def clean_name(name: str) -> str:
    """A display name as it is written: controls as spaces, any run of (Unicode) spaces as one."""
    return " ".join(clean_text(name).split())


def check_header_name(name: str) -> str:
    """``name`` if it is a valid field name (printable ASCII, no colon), else ValidationError."""
    if _HEADER_NAME.fullmatch(name) is None:
        raise ValidationError(f"invalid mail header name {name!r}", field="headers")
    return name


#: the last date formatted and its text: a dispatcher dates a whole batch with one datetime
_last_date: tuple[datetime, str] | None = None


def format_date(moment: datetime) -> str:
    """The RFC 5322 date of an aware datetime, e.g. ``Tue, 03 Mar 2026 09:00:00 +0100``.

    The same object as last time gets the same text without formatting it
    again (an identity test: equal instants in other zones are written apart).
    """
    global _last_date
    last = _last_date
    if last is not None and last[0] is moment:
        return last[1]
    text = _formatted_date(moment)
    _last_date = (moment, text)
    return text


def _formatted_date(moment: datetime) -> str:
    offset = moment.utcoffset()
    if offset is None:
        raise ValidationError("the mail date must carry a time zone", field="date")
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return (
        f"{_DAYS[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month]} {moment.year:04d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {sign}{hours:02d}{mins:02d}"
    )


def check_message_id(message_id: str) -> str:
    """``message_id`` if it reads ``<local@domain>``, else ValidationError."""
    if _MESSAGE_ID.fullmatch(message_id) is None:
        raise ValidationError(f"invalid Message-ID {message_id!r}", field="message_id")
    return message_id


@lru_cache(maxsize=4096)
def check_address(address: str, field: str = "address") -> str:
    """``address`` as written in a header: a plain addr-spec, its domain in ASCII (IDNA).

    Whitespace, control characters, a missing ``@``, quoting, comments or a
    non-ASCII local part raise :class:`ValidationError` naming ``field``.
    """
    local, at, domain = address.rpartition("@")
    if at and not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValidationError(f"invalid email domain in {address!r}", field=field) from exc
        address = f"{local}@{domain}"
    if _ADDRESS.fullmatch(address) is None:
        raise ValidationError(f"invalid email address {address!r}", field=field)
    return address


def encoded_words(text: str, first: int) -> list[str]:
    """``text`` as RFC 2047 "B" encoded words in UTF-8.

    The first word fits in ``first`` characters (what is left on the header's
    first line), the others in 75. A word never ends inside a UTF-8 sequence.
    """
    data = utf8(text)
    words: list[str] = []
    room = max(first, _WORD_OVERHEAD + 8)
    start, size = 0, len(data)
    while start < size:
        end = min(start + (room - _WORD_OVERHEAD) // 4 * 3, size)
        while end < size and data[end] & 0xC0 == 0x80:  # continuation byte: step back
            end -= 1
        chunk = b2a_base64(data[start:end], newline=False).decode("ascii")
        words.append(f"{_WORD_PREFIX}{chunk}?=")
        start, room = end, _MAX_WORD
    return words


def fold(name: str, words: list[str]) -> str:
    """``Name: word word ...`` folded before a space so lines stay within 78 characters.

    Every word after the first carries its own leading space(s); folding
    puts a CRLF before them, which unfolds back to the same text. A word
    longer than a line stays whole on its own line.
    """
    line = f"{name}: {words[0]}"
    lines: list[str] = []
    for word in words[1:]:
        if len(line) + len(word) > MAX_LINE:
            lines.append(line)
            line = word
        else:
            line += word
    lines.append(line)
    return "\r\n".join(lines)


def unstructured(name: str, value: str, *, keep_long_words: bool = False) -> str:
    """A complete ``Name: value`` header for free text (Subject, extra headers).

    Plain ASCII is kept as it is and folded at spaces; other text becomes
    encoded words so it reads back exactly (inner spaces included). ASCII
    with a word too long for one line is encoded too (split across words),
    unless ``keep_long_words``: an extra header such as ``List-Unsubscribe``
    holds a URL that must stay whole, on a longer line.
    """
    value = clean_text(value)
    if value.isascii() and "=?" not in value:
        if len(name) + len(value) + 2 <= MAX_LINE:
            return f"{name}: {value}"
        words = _WORDS.findall(value)
        if keep_long_words or max(map(len, words)) < MAX_LINE - len(name) - 2:
            return fold(name, words)
    words = encoded_words(value, MAX_LINE - len(name) - 2)
    return fold(name, words[:1] + [" " + word for word in words[1:]])


@lru_cache(maxsize=4096)
def address_header(name: str, address: str, display: str | None, field: str) -> str:
    """A complete ``Name: Display <address>`` header (From, To, Reply-To).

    The display name is written as atoms when it can be, as a quoted string
    when it holds ASCII specials, and as encoded words otherwise.
    """
    address = check_address(address, field)
    phrase = clean_name(display) if display else ""
    if not phrase:
        return f"{name}: {address}"
    if "=?" not in phrase and _ATOM_PHRASE.fullmatch(phrase) is not None:
        words = phrase.split(" ")
    elif "=?" not in phrase and len(phrase) < 60 and _PRINTABLE.fullmatch(phrase) is not None:
        quoted = phrase.replace("\\", "\\\\").replace('"', '\\"')
        words = [f'"{quoted}"']
    else:
        room = MAX_LINE - len(name) - 2
        single = _phrase_word(phrase, min(room, _MAX_WORD))
        words = [single] if single else encoded_words(phrase, room)
    return fold(name, [words[0], *(" " + word for word in words[1:]), f" <{address}>"])


def _phrase_word(phrase: str, room: int) -> str | None:
    """``phrase`` as ONE "Q" encoded word fit for a display name, if it fits in ``room``.

    One word when possible: CPython 3.11's parser keeps the space between two
    encoded words of a display name (gh-128110) where RFC 2047 drops it.
    Q suits names, mostly ASCII: a letter costs one character, not 4/3.
    """
    text = "".join([_Q_BYTES[byte] for byte in utf8(phrase)])
    word = f"=?utf-8?q?{text}?="
    return word if len(word) <= room else None
