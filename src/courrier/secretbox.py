"""Secrets stored encrypted with Fernet: mailbox passwords, DKIM private keys.

Lives at the top of the package so every layer may use it (the engine signs
mail with a stored DKIM key; the inbound reader logs in with a stored
password) without one layer importing another sideways.

The key comes from ``COURRIER_ENCRYPTION_KEY`` when it is set (one or more
Fernet keys, comma-separated: the first encrypts, all decrypt, so a key can
be rotated), and is otherwise derived from the secret key with HKDF-SHA256,
so a default installation encrypts without one more setting. Changing the
secret key then makes stored secrets unreadable: whoever reads one says so,
and it must be entered again.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from courrier.errors import ConfigurationError
from courrier.settings import Settings

__all__ = ["DERIVATION_INFO", "PasswordBox", "SecretBox", "derive_key"]

#: kept as it was when only mailbox passwords were stored, so they still decrypt
DERIVATION_INFO = b"courrier mailbox passwords v1"


def derive_key(secret: str) -> bytes:
    """A Fernet key (urlsafe base64 of 32 bytes) derived from ``secret``."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=DERIVATION_INFO).derive(
        secret.encode("utf-8")
    )
    return base64.urlsafe_b64encode(raw)


class SecretBox:
    """Encrypts and decrypts stored secrets with the keys from settings."""

    def __init__(self, settings: Settings) -> None:
        configured = settings.encryption_key.get_secret_value() if settings.encryption_key else ""
        try:
            if configured.strip():
                keys = [Fernet(k.strip()) for k in configured.split(",") if k.strip()]
            else:
                keys = [Fernet(derive_key(settings.signing_key()))]
        except ValueError as exc:
            raise ConfigurationError(
                "COURRIER_ENCRYPTION_KEY must be Fernet keys (44 characters of urlsafe base64), "
                "comma-separated; make one with: python -c "
                "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from exc
        self._fernet = MultiFernet(keys)

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, what: str = "mailbox password") -> str:
        """The secret; a token made with another key is a :class:`ConfigurationError`."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise ConfigurationError(
                f"a stored {what} cannot be decrypted: the encryption key changed; "
                f"enter the {what} again"
            ) from exc


#: the name the inbound reader has always used
PasswordBox = SecretBox
