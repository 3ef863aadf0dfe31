"""Signed links and tokens: tracking, the original of a message, one-click unsubscribe, VERP.

Every link a recipient can follow names what it is about (a message, a
contact) inside a token signed with the installation's secret key, each
purpose under its own salt, so a token made for one purpose is refused by
every other and nobody can mark another person's message read. Verifying
returns None for a forged, altered or foreign token; the routes answer 404.

The VERP bounce token is short and lower-case (some servers lower-case the
local part): the message id and the first 12 hex digits of an HMAC-SHA256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from json.encoder import encode_basestring
from typing import Any

__all__ = ["LinkSigner"]

PURPOSES = ("open", "click", "original", "download", "unsubscribe")
VERP_TOKEN = re.compile(r"^(\d{1,19})-([0-9a-f]{12})$")


class LinkSigner:
    """Makes and checks the signed links of one installation (``base_url`` without a slash).

    A token is ``<base64url of the JSON payload>.<base64url of the first 16
    bytes of its HMAC-SHA256>``, keyed per purpose with a key derived once
    (a token costs a few microseconds; tracking makes several a mail).
    """

    def __init__(self, secret: str, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._secret = secret.encode()
        self._keys = {
            purpose: hashlib.sha256(
                b"courrier.link:" + purpose.encode() + b":" + self._secret
            ).digest()
            for purpose in PURPOSES
        }
        self._macs = {p: _keyed(key) for p, key in self._keys.items()}
        inner, self._verp_outer = _keyed(self._secret)
        inner.update(b"courrier.verp:")
        self._verp_inner = inner

    # -- tokens ------------------------------------------------------------

    def token(self, purpose: str, payload: list[Any]) -> str:
        """The signed token carrying ``payload`` (a short JSON list) for ``purpose``."""
        body = _b64(_compact_json(payload).encode())
        return f"{body}.{self._mac_of(purpose, body)}"

    def verify(self, purpose: str, token: str) -> list[Any] | None:
        """The payload of a genuine token of ``purpose``; None for anything else."""
        body, dot, mac = token.rpartition(".")
        if not dot or purpose not in self._keys:
            return None
        if not hmac.compare_digest(
            mac.encode("ascii", "replace"), self._mac_of(purpose, body).encode()
        ):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, UnicodeError):
            return None
        return payload if isinstance(payload, list) else None

    def _mac_of(self, purpose: str, body: str) -> str:
        inner, outer = self._macs[purpose]
        return _b64(_hmac(inner, outer, body.encode())[:16])

    # -- links -------------------------------------------------------------

    def open_pixel(self, message_id: int) -> str:
        return f"{self.base_url}/t/o/{self.token('open', [message_id])}.gif"

    def click(self, message_id: int, url: str) -> str:
        return f"{self.base_url}/t/c/{self.token('click', [message_id, url])}"

    def original(self, message_id: int) -> str:
        """The signed "view the original" page: following it proves the message was read."""
        return f"{self.base_url}/t/v/{self.token('original', [message_id])}"

    def download(self, message_id: int, index: int) -> str:
        return f"{self.base_url}/t/d/{self.token('download', [message_id, index])}"

    def unsubscribe(self, tenant_id: int, contact_id: int, kind: str) -> str:
        """RFC 8058 one-click target: a POST switches ``kind`` off for the contact."""
        return f"{self.base_url}/u/{self.token('unsubscribe', [tenant_id, contact_id, kind])}"

    # -- VERP --------------------------------------------------------------

    def verp_token(self, message_id: int) -> str:
        return f"{message_id}-{self._mac(str(message_id))}"

    def verp_message_id(self, token: str) -> int | None:
        """The message a bounce address names, or None when the token is not genuine."""
        found = VERP_TOKEN.match(token.strip().lower())
        if found is None:
            return None
        if not hmac.compare_digest(found.group(2), self._mac(found.group(1))):
            return None
        return int(found.group(1))

    def _mac(self, text: str) -> str:  # VERP: the inner state is fed the prefix once
        return _hmac(self._verp_inner, self._verp_outer, text.encode()).hex()[:12]


_Keyed = tuple["hashlib._Hash", "hashlib._Hash"]


def _keyed(key: bytes) -> _Keyed:
    """HMAC-SHA256's inner and outer hashes fed their padded key (RFC 2104), to be copied.

    :func:`_hmac` from them gives ``hmac.new(key, msg, sha256).digest()``
    without the ``hmac.HMAC`` object's Python layer (half the time of its copy).
    """
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return (
        hashlib.sha256(key.translate(_IPAD)),
        hashlib.sha256(key.translate(_OPAD)),
    )


def _hmac(inner: hashlib._Hash, outer: hashlib._Hash, message: bytes) -> bytes:
    """The HMAC of ``message`` under the key of ``inner``/``outer`` (copied: never shared)."""
    inner = inner.copy()
    inner.update(message)
    outer = outer.copy()
    outer.update(inner.digest())
    return outer.digest()


_BLOCK = hashlib.sha256().block_size
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


def _compact_json(payload: list[Any]) -> str:
    """``json.dumps(payload, separators=(",", ":"), ensure_ascii=False)``, cheaper for the usual.

    Every token Courrier makes is a list of ints and strings; writing those
    directly (with json's own string encoder) skips building a JSON encoder
    per call, which cost more than the HMAC. Anything else goes to json.
    """
    if all(type(item) is int or type(item) is str for item in payload):
        return (
            "["
            + ",".join(
                str(item) if type(item) is int else encode_basestring(item) for item in payload
            )
            + "]"
        )
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> str:
    """Unpadded base64url."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")
