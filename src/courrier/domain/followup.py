"""The follow-up policy of an important message: when to remind a recipient who has not read it.

A kind (or a direct message) may carry a policy: up to three follow-ups,
each later than the one before, the first at least an hour after sending,
so nobody is pestered minutes after the first mail. Each follow-up repeats
the original and links to it; opening that link, or a reply, stops the rest
(:mod:`courrier.engine.followups`). ``cc_bcc`` sends the follow-ups to the
original's Cc and Bcc recipients too; without it only the main recipient is
reminded.

The JSON form, in a kind or a ``POST /v1/messages`` body and stored in
``messages.follow_up``, is ``{"delays_minutes": [60, 1440], "cc_bcc": false}``;
delays count from the time the original was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from courrier.errors import ValidationError

__all__ = ["FIRST_DELAY_MINUTES", "MAX_FOLLOW_UPS", "FollowUpPolicy", "policy_from_json"]

MAX_FOLLOW_UPS = 3
FIRST_DELAY_MINUTES = 60
#: a year: a later reminder is no reminder any more
MAX_DELAY_MINUTES = 525_600


@dataclass(frozen=True)
class FollowUpPolicy:
    """Follow-ups ``delays_minutes`` after the original is sent; ``cc_bcc``: to Cc/Bcc as well."""

    delays_minutes: tuple[int, ...]
    cc_bcc: bool = False

    def __post_init__(self) -> None:
        problem = policy_problem(self.delays_minutes)
        if problem is not None:
            raise ValidationError(problem, "follow_up.delays_minutes")

    def as_json(self) -> dict[str, Any]:
        return {"delays_minutes": list(self.delays_minutes), "cc_bcc": self.cc_bcc}


def policy_problem(delays: tuple[int, ...]) -> str | None:
    """What is wrong with these delays, in the words the API answers; None when they can work."""
    if not delays:
        return "name at least one follow-up (a delay in minutes)"
    if len(delays) > MAX_FOLLOW_UPS:
        return f"at most {MAX_FOLLOW_UPS} follow-ups"
    if delays[0] < FIRST_DELAY_MINUTES:
        return f"the first follow-up must come at least {FIRST_DELAY_MINUTES} minutes after sending"
    if any(later <= earlier for earlier, later in pairwise(delays)):
        return "each follow-up must come later than the one before"
    if delays[-1] > MAX_DELAY_MINUTES:
        return f"a follow-up comes at most {MAX_DELAY_MINUTES} minutes (a year) after sending"
    return None


def policy_from_json(data: object, where: str = "follow_up") -> FollowUpPolicy | None:
    """The policy of a JSON value (None stays None); a ValidationError naming the field."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise ValidationError(f"{where} is an object {{delays_minutes, cc_bcc}}", where)
    unknown = sorted(set(data) - {"delays_minutes", "cc_bcc"})
    if unknown:
        raise ValidationError(f"{where}: unknown field {unknown[0]!r}", f"{where}.{unknown[0]}")
    delays = data.get("delays_minutes")
    if not isinstance(delays, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in delays
    ):
        raise ValidationError(
            f"{where}.delays_minutes is a list of whole numbers of minutes",
            f"{where}.delays_minutes",
        )
    cc_bcc = data.get("cc_bcc", False)
    if not isinstance(cc_bcc, bool):
        raise ValidationError(f"{where}.cc_bcc is true or false", f"{where}.cc_bcc")
    problem = policy_problem(tuple(delays))
    if problem is not None:
        raise ValidationError(problem, f"{where}.delays_minutes")
    return FollowUpPolicy(tuple(delays), cc_bcc)
