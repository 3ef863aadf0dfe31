"""What leaves for one message row: the envelope sender, the recipients, the bytes.

The dispatcher calls :meth:`Outgoing.load` once per claimed batch (in the
claim's transaction) and :meth:`Outgoing.build` for each message from its
send threads. ``load`` reads what the batch's tenants send with — bounce
domain, tracking switch, DKIM selector and key (decrypted and loaded once
per tenant and key, then kept), which kinds may be switched off — so
``build`` touches no database and shares only read-only state.

What ``build`` adds to the mail of :func:`mail_of`:

* the envelope sender is a VERP address, ``bounces+<signed id>@<domain>``,
  so a bounce names its message whatever the remote server writes in it;
* ``List-Unsubscribe`` (a signed one-click URL) and ``List-Unsubscribe-Post``
  (RFC 8058) on a message to a contact of a kind the contact may switch off,
  never on a password reset;
* with tracking on (the default): signed click redirects, an open pixel and
  a "view this message online" link in the HTML part, and the same link on
  the last line of the text part;
* a DKIM signature with ``d=`` the From domain when the tenant has a key.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from sqlalchemy import Connection

from courrier.domain.kinds import DEFAULT_CATALOGUE
from courrier.errors import ConfigurationError, ValidationError
from courrier.render.dkim import DkimSigner, load_private_key
from courrier.render.links import LinkSigner
from courrier.render.mime import MailAttachment, OutgoingMail, build_mime
from courrier.render.tracking import track_html, track_text
from courrier.secretbox import SecretBox
from courrier.settings import Settings
from courrier.store.kinds import Catalogues
from courrier.store.tenants import Tenant, tenants_by_id

__all__ = ["Envelope", "Outgoing", "mail_of"]

log = logging.getLogger(__name__)
ONE_CLICK = ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
#: loaded DKIM keys kept at most (tenants x key changes); cleared whole when full
MAX_KEYS = 1000


@dataclass(frozen=True)
class Envelope:
    """One SMTP transaction: MAIL FROM, RCPT TO (To, Cc and Bcc), DATA."""

    sender: str
    recipients: list[str]
    data: bytes


@dataclass(frozen=True)
class Identity:
    """How one tenant's mail leaves: read per batch by :meth:`Outgoing.load`."""

    tracking: bool = True
    bounce_domain: str | None = None
    dkim_selector: str | None = None
    dkim_key: RSAPrivateKey | None = None
    switchable_kinds: frozenset[str] = frozenset()  # kinds a contact may switch off


_NO_IDENTITY = Identity()  # a tenant the batch did not load: the defaults


def mail_of(row: dict[str, Any], date: datetime) -> OutgoingMail:
    """The mail for a message row; the Message-ID is the one fixed at planning.

    ``messages.attachments`` holds ``{"filename", "content_type", "content",
    "params"?: [[k, v]...], "method"?, "encoding"?}`` items.
    """
    return _mail(row, date, row["body_text"], row["body_html"], ())


def _mail(
    row: dict[str, Any],
    date: datetime,
    text: str,
    html: str | None,
    extra_headers: tuple[tuple[str, str], ...],
) -> OutgoingMail:
    """The mail of a row with its bodies and extra headers as given (by :meth:`Outgoing.build`)."""
    attachments = tuple(
        MailAttachment(
            filename=item["filename"],
            content_type=item["content_type"],
            content=attachment_content(item),
            params=_attachment_params(item),
        )
        for item in row["attachments"] or ()
    )
    return OutgoingMail(
        message_id=row["message_id_header"],
        date=date,
        from_addr=row["from_addr"],
        from_name=row["from_name"],
        to_addr=row["address"],
        to_name=row["to_name"],
        reply_to=row["reply_to"],
        cc=tuple(row.get("cc_addrs") or ()),
        subject=row["subject_line"],
        text=text,
        html=html,
        attachments=attachments,
        headers=(("X-Courrier-Message", str(row["id"])), *extra_headers),
    )


def attachment_content(item: dict[str, Any]) -> bytes:
    """Stored as text (an .ics), or base64 with ``"encoding": "base64"`` (any binary file)."""
    if item.get("encoding") == "base64":
        return base64.b64decode(item["content"])
    return str(item["content"]).encode("utf-8")


def _attachment_params(item: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    params = tuple((str(k), str(v)) for k, v in item.get("params") or ())
    if not params and item.get("method"):
        params = (("method", str(item["method"])),)
    return params


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


class Outgoing:
    """Builds the envelopes of one worker; ``load`` reads the batch's tenants' identities."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.links = LinkSigner(settings.signing_key(), settings.base_url)
        self._box: SecretBox | None = None
        self._identities: dict[int, Identity] = {}
        self._keys: dict[tuple[int, str], RSAPrivateKey] = {}
        self._lock = threading.Lock()

    def load(
        self, conn: Connection, tenant_ids: Iterable[int], catalogues: Catalogues | None = None
    ) -> None:
        """Read (in the claim's transaction) what the batch's tenants send with.

        ``catalogues`` shares the tenants' catalogues the claim's checks read already.
        """
        catalogues = catalogues or Catalogues(conn, DEFAULT_CATALOGUE)
        identities = dict(self._identities)
        for tenant in tenants_by_id(conn, tenant_ids).values():
            kinds = catalogues.of(tenant.id)
            identities[tenant.id] = Identity(
                tracking=tenant.tracking,
                bounce_domain=tenant.bounce_domain,
                dkim_selector=tenant.dkim_selector,
                dkim_key=self._dkim_key(tenant),
                switchable_kinds=frozenset(
                    tk.kind.name for tk in kinds.kinds if tk.kind.preference_optional
                ),
            )
        self._identities = identities  # one assignment: send threads see old or new, whole

    def _dkim_key(self, tenant: Tenant) -> RSAPrivateKey | None:
        """The tenant's loaded DKIM key (decrypted once per key), or None.

        A key that cannot be decrypted (the encryption key changed) is logged
        and the mail leaves unsigned rather than not at all.
        """
        if not tenant.dkim_selector or not tenant.dkim_key_encrypted:
            return None
        cache_key = (tenant.id, tenant.dkim_key_encrypted)
        with self._lock:
            key = self._keys.get(cache_key)
        if key is not None:
            return key
        try:
            if self._box is None:
                self._box = SecretBox(self.settings)
            pem = self._box.decrypt(tenant.dkim_key_encrypted, "DKIM private key")
            key = load_private_key(pem)
        except (ConfigurationError, ValidationError) as exc:
            log.error("tenant %s: mail leaves without DKIM: %s", tenant.id, exc)
            return None
        with self._lock:
            if len(self._keys) >= MAX_KEYS:
                self._keys.clear()
            self._keys[cache_key] = key
        return key

    def build(self, row: dict[str, Any], date: datetime) -> Envelope:
        """The envelope and bytes of one message row (called from the send threads)."""
        message_id = int(row["id"])
        identity = self._identities.get(int(row["tenant_id"]), _NO_IDENTITY)
        extra: tuple[tuple[str, str], ...] = ()
        if row.get("contact_id") is not None and row["kind"] in identity.switchable_kinds:
            url = self.links.unsubscribe(int(row["tenant_id"]), int(row["contact_id"]), row["kind"])
            extra = (("List-Unsubscribe", f"<{url}>"), ONE_CLICK)
        text, html = row["body_text"], row["body_html"]
        if identity.tracking:
            original = self.links.original(message_id)
            text = track_text(text, original, row["locale"])
            if html:
                html = track_html(html, message_id, self.links, row["locale"], original=original)
        data = build_mime(_mail(row, date, text, html, extra))
        from_domain = _domain(row["from_addr"])
        if identity.dkim_key is not None and identity.dkim_selector:
            data = DkimSigner(identity.dkim_key, from_domain, identity.dkim_selector).sign(data)
        bounce_domain = identity.bounce_domain or from_domain
        sender = f"bounces+{self.links.verp_token(message_id)}@{bounce_domain}"
        recipients = [row["address"], *(row.get("cc_addrs") or ()), *(row.get("bcc_addrs") or ())]
        return Envelope(sender, list(dict.fromkeys(recipients)), data)
