"""What one send attempt of a claimed message came to, as the after-send hooks see it."""

from __future__ import annotations

from dataclasses import dataclass

from courrier.store.queue import ClaimedMessage, Outcome

__all__ = ["SendResult"]


@dataclass(frozen=True)
class SendResult:
    """A recorded attempt: the message as claimed, its outcome, and the server's reply.

    ``kind`` is sent, transient, permanent or release; ``code`` the SMTP
    reply code when there was one; ``reply`` the reply text (with its
    enhanced status code, e.g. ``5.1.1 User unknown``).
    """

    message: ClaimedMessage
    outcome: Outcome
    kind: str
    code: int | None
    reply: str
