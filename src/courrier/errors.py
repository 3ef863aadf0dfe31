"""Courrier's errors.

Every error Courrier raises on purpose derives from :class:`CourrierError`,
and carries what a person needs to act on it::

    CourrierError
    ├── ConfigurationError        a setting is wrong or a service unreachable at start
    ├── ValidationError           input is wrong; names the field (API: 422)
    ├── NotFoundError             no such record for this tenant (API: 404)
    ├── AuthenticationError       missing or unknown API key (API: 401)
    ├── TemplateError             a template does not parse or render
    └── DeliveryError             a channel could not send a message
        ├── TransientDeliveryError    retry later (4xx, timeout, dropped connection)
        └── PermanentDeliveryError    do not retry (5xx, refused recipient)

Errors from libraries (smtplib, sqlite3, psycopg...) are translated into one of
these where they enter Courrier, with ``raise ... from exc``.
"""

from __future__ import annotations


class CourrierError(Exception):
    """Root of every error Courrier raises on purpose."""


class ConfigurationError(CourrierError):
    """A setting is wrong, or a service it names cannot be reached.

    The message is one line saying what to fix.
    """


class ValidationError(CourrierError):
    """Input that cannot be accepted; ``field`` names where (dotted path).

    ``event``: in a batch of events refused because of one, that one's
    position (``field`` is then a path inside it).
    """

    def __init__(self, message: str, field: str | None = None, *, event: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.event = event


class NotFoundError(CourrierError):
    """No such record for this tenant."""


class AuthenticationError(CourrierError):
    """A missing, malformed or unknown API key."""


class TemplateError(CourrierError):
    """A template that does not parse, or fails while rendering."""


class DeliveryError(CourrierError):
    """A channel could not deliver a message.

    ``code`` is the server's reply code when there was one (e.g. 451, 550),
    ``reply`` the server's text (or the local cause).
    """

    def __init__(self, reply: str, code: int | None = None) -> None:
        super().__init__(f"{code} {reply}" if code else reply)
        self.reply = reply
        self.code = code


class TransientDeliveryError(DeliveryError):
    """Worth retrying later: 4xx replies, timeouts, dropped connections."""


class PermanentDeliveryError(DeliveryError):
    """Not worth retrying: 5xx replies, refused recipients, malformed mail."""
