"""Standard Webhooks signatures: what lets an integrator trust a webhook came from Courrier.

The scheme is the one of https://www.standardwebhooks.com, so integrators can
check it with any of that project's libraries: the secret is ``whsec_``
followed by base64 of random bytes; the signed content is
``"{webhook-id}.{webhook-timestamp}.{body}"``; the signature is
``v1,`` + base64 of its HMAC-SHA256 keyed with the decoded secret bytes. The
id stays the same across retries, so a receiver can drop duplicates; the
timestamp lets it refuse replays of an old request.

Pure: no clock, no network; the caller passes the time and the id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

__all__ = ["SECRET_PREFIX", "headers", "new_secret", "sign", "verify"]

SECRET_PREFIX = "whsec_"  # noqa: S105 (the marker of a secret, not one)
#: Random bytes in a new secret (the Standard Webhooks libraries accept 24 to 64).
SECRET_BYTES = 24


def new_secret() -> str:
    """A fresh endpoint secret, ``whsec_<base64 of 24 random bytes>``."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_`` secret; ValueError when it is not one."""
    text = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one request: ``v1,<base64 HMAC-SHA256>``."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header a signed webhook request carries."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
        "content-type": "application/json",
    }


def verify(secret: str, webhook_id: str, timestamp: int, body: bytes, signature: str) -> bool:
    """Whether a ``webhook-signature`` value (one or more space-separated) matches the content.

    Timestamp freshness is the receiver's policy; it is not judged here.
    """
    expected = sign(secret, webhook_id, timestamp, body).encode()
    return any(
        hmac.compare_digest(expected, candidate.encode())
        for candidate in signature.split(" ")
        if candidate.startswith("v1,")
    )
