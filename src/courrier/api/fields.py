"""Typed input fields of the API and the checks behind them.

Each check raises ``ValueError`` with words for people; pydantic turns that
into a 422 naming the field. Text is bounded and refuses NUL characters and
lone surrogates, which the databases cannot store; instants stay within years
that convert to UTC without overflowing.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, AwareDatetime, StringConstraints

#: Instants outside these years are refused: they overflow on conversion to UTC.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
PHONE = re.compile(r"^\+?[0-9 ().\-]{3,31}$")
LOCALE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")


def no_nul(value: str) -> str:
    """Refuse NUL bytes: PostgreSQL cannot store them in text."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def email_address(value: str) -> str:
    """A syntactically valid address (no DNS lookup), normalised."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"is not a valid email address ({exc})") from exc


def time_zone(value: str) -> str:
    """An IANA zone name that zoneinfo knows, such as Europe/Paris."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"is not a known time zone: {value!r} (write e.g. Europe/Paris)") from exc
    return value


def locale_tag(value: str) -> str:
    if not LOCALE.match(value):
        raise ValueError("must be a language tag such as fr or fr-FR")
    return value


def phone_number(value: str) -> str:
    if not PHONE.match(value):
        raise ValueError("must be a phone number such as +33 6 12 34 56 78")
    return value


def id_as_text(value: Any) -> Any:
    """Ids may be sent as numbers; they are kept as text. Numbers past 64 bits are refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:
            raise ValueError("is too large a number for an id")
        return str(value)
    return value


def reasonable_instant(value: datetime) -> datetime:
    if not EARLIEST <= value <= LATEST:
        raise ValueError("must be between the years 1900 and 9000")
    return value


def check_text(value: str, path: str) -> None:
    """Text a database can store: no NUL character, no lone surrogate."""
    if "\x00" in value:
        raise FieldProblem(path, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FieldProblem(path, "must be valid Unicode text") from exc


def check_plain(value: Any, path: str, depth: int = 0) -> None:
    """Check free-form JSON (a subject's state): no NUL, no NaN or infinity, at most 20 levels deep.

    Raises :class:`FieldProblem` naming the dotted path of the bad value.
    """
    if depth > 20:
        raise FieldProblem(path, "is nested too deeply")
    if isinstance(value, str):
        check_text(value, path)
    if isinstance(value, float) and not math.isfinite(value):
        raise FieldProblem(path, "must be a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            check_text(key, path)
            check_plain(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_plain(item, f"{path}.{index}", depth + 1)


class FieldProblem(ValueError):
    """A problem found after parsing, naming its field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


Text = Annotated[str, StringConstraints(max_length=200), AfterValidator(no_nul)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(no_nul)]
Email = Annotated[
    str, StringConstraints(max_length=320), AfterValidator(no_nul), AfterValidator(email_address)
]
Zone = Annotated[
    str, StringConstraints(max_length=64), AfterValidator(no_nul), AfterValidator(time_zone)
]
Locale = Annotated[str, StringConstraints(max_length=16), AfterValidator(locale_tag)]
Phone = Annotated[str, StringConstraints(max_length=32), AfterValidator(phone_number)]
Instant = Annotated[AwareDatetime, AfterValidator(reasonable_instant)]
DottedName = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$", max_length=100)
]
TypeName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
