"""Opaque cursors for newest-first pages: the last row id seen, signed by nothing but checked.

A cursor is ``base64url("v1:<id>")``; clients treat it as opaque, and a
cursor that does not decode is a 422 naming ``cursor``.
"""

from __future__ import annotations

import base64
import binascii

from courrier.errors import ValidationError

#: Ids are 64-bit signed on PostgreSQL; a larger number cannot be a row.
MAX_ID = 2**63 - 1


def encode_cursor(last_id: int) -> str:
    """The cursor that continues after (older than) the row ``last_id``."""
    return base64.urlsafe_b64encode(f"v1:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The row id a cursor continues from, or None for the first page."""
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ValidationError("is not a cursor this API gave", field="cursor") from exc
    version, _, number = text.partition(":")
    if version != "v1" or not number.isdigit() or not 0 < int(number) <= MAX_ID:
        raise ValidationError("is not a cursor this API gave", field="cursor")
    return int(number)


def next_cursor(ids: list[int], limit: int) -> str | None:
    """The cursor for the page after one holding ``ids``; None when that page was the last."""
    if len(ids) < limit or not ids:
        return None
    return encode_cursor(ids[-1])
