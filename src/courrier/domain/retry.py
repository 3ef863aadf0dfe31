"""When to try a transiently failed message again."""

from __future__ import annotations

import random
from datetime import timedelta


def retry_delay(
    attempt: int,
    *,
    base_seconds: float,
    max_seconds: float,
    rng: random.Random | None = None,
) -> timedelta:
    """Exponential backoff with full jitter for the retry after ``attempt`` (1-based).

    The delay is drawn between half and all of ``base * 2**(attempt-1)``,
    capped at ``max_seconds``, so retries spread out instead of hitting a
    recovering server all at once.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    ceiling = min(max_seconds, base_seconds * 2 ** (attempt - 1))
    draw = (rng or random).uniform(0.5, 1.0)
    return timedelta(seconds=ceiling * draw)
