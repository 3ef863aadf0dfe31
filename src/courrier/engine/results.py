"""What one send attempt of a claimed message came to, as the after-send hooks see it."""

from __future__ import annotations

from dataclasses import dataclass

from courrier.store.queue import ClaimedMessage, Outcome

__all__ = ["Refused", "SendResult"]


@dataclass(frozen=True)
class Refused:
    """A recipient the server refused while taking the mail for the others (a bad Cc)."""

    address: str
    code: int | None
    reply: str
    permanent: bool


@dataclass(frozen=True)
class SendResult:
    """A recorded attempt: the message as claimed, its outcome, and the server's reply.

    ``kind`` is sent, transient, permanent or release; ``code`` the SMTP
    reply code when there was one; ``reply`` the reply text (with its
    enhanced status code, e.g. ``5.1.1 User unknown``); ``refused`` the
    recipients refused by a server that took the mail for the others.
    """

    message: ClaimedMessage
    outcome: Outcome
    kind: str
    code: int | None
    reply: str
    refused: tuple[Refused, ...] = ()
