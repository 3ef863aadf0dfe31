"""Mailbox passwords, encrypted at rest with Fernet: see :mod:`courrier.secretbox`.

The box moved there so the engine can decrypt DKIM keys with it too; this
module keeps the names the inbound reader and API import.
"""

from __future__ import annotations

from courrier.secretbox import DERIVATION_INFO, PasswordBox, derive_key

__all__ = ["DERIVATION_INFO", "PasswordBox", "derive_key"]
