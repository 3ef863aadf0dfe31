"""Tenants and their API keys.

An API key is ``ck_`` followed by 32 random bytes (URL-safe base64). It is
shown once, when it is made; only its SHA-256 is stored, with a short prefix
to find the candidate row without scanning. A key that random needs no slow
password hash: nobody can guess it, so a fast hash loses nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from courrier.errors import NotFoundError
from courrier.store.schema import api_keys, tenants
from courrier.store.statements import Prepared, array, in_array

KEY_PREFIX = "ck_"
#: characters of the key (after ``ck_``) kept in clear for the lookup
PREFIX_LENGTH = 8


@dataclass(frozen=True)
class Tenant:
    """One organisation: a club, a restaurant, a building."""

    id: int
    name: str
    from_email: str
    from_name: str | None
    reply_to: str | None
    timezone: str
    locale: str
    address: str | None = None  # postal address, in the footer of every mail
    logo_url: str | None = None  # an https image, at the top of every HTML mail
    # deliverability (migration 0004): identity, tracking, limits
    block_threshold: int = 12  # errors after which an address is blocked
    bounce_domain: str | None = None  # VERP bounces go to bounces+...@ this (else the From's)
    dkim_selector: str | None = None
    dkim_key_encrypted: str | None = field(default=None, repr=False)  # Fernet of the PEM
    tracking: bool = True  # open pixel, tracked links, "view online"
    rate_per_minute: int | None = None
    domain_rate_per_minute: int | None = None

    @property
    def mail_domain(self) -> str:
        """The domain of the tenant's sending address (for Message-IDs and UIDs)."""
        return self.from_email.rpartition("@")[2].lower() or "localhost"


def _tenant(row: Any) -> Tenant:
    m = row._mapping
    return Tenant(
        id=m["id"],
        name=m["name"],
        from_email=m["from_email"],
        from_name=m["from_name"],
        reply_to=m["reply_to"],
        timezone=m["timezone"],
        locale=m["locale"],
        address=m["address"],
        logo_url=m["logo_url"],
        block_threshold=int(m["block_threshold"]),
        bounce_domain=m["bounce_domain"],
        dkim_selector=m["dkim_selector"],
        dkim_key_encrypted=m["dkim_key_encrypted"],
        tracking=bool(m["tracking"]),
        rate_per_minute=m["rate_per_minute"],
        domain_rate_per_minute=m["domain_rate_per_minute"],
    )


def create_tenant(
    conn: Connection,
    name: str,
    *,
    from_email: str,
    from_name: str | None = None,
    reply_to: str | None = None,
    timezone: str = "UTC",
    locale: str = "en",
    address: str | None = None,
    logo_url: str | None = None,
    now: datetime,
) -> Tenant:
    """Add a tenant; its name is unique (the database refuses a second one)."""
    values = {
        "name": name,
        "from_email": from_email,
        "from_name": from_name,
        "reply_to": reply_to,
        "timezone": timezone,
        "locale": locale,
        "address": address,
        "logo_url": logo_url,
    }
    tenant_id = conn.execute(
        insert(tenants).values(**values, created_at=now).returning(tenants.c.id)
    ).scalar_one()
    return get_tenant(conn, tenant_id)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(
    conn: Connection, tenant_id: int, *, now: datetime, label: str | None = None
) -> str:
    """Make a new key for the tenant and return it; only its hash is kept."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        insert(api_keys).values(
            tenant_id=tenant_id,
            prefix=key[len(KEY_PREFIX) : len(KEY_PREFIX) + PREFIX_LENGTH],
            key_hash=_hash(key),
            label=label,
            created_at=now,
        )
    )
    return key


#: the tenants of the keys (not revoked) that start with a prefix: asked on every API call
_BY_KEY_PREFIX = Prepared(
    lambda _dialect: (
        select(api_keys.c.key_hash, tenants)
        .join(tenants, tenants.c.id == api_keys.c.tenant_id)
        .where(api_keys.c.prefix == bindparam("prefix"), api_keys.c.revoked_at.is_(None))
    )
)


def tenant_for_key(conn: Connection, key: str) -> Tenant | None:
    """The tenant a (not revoked) key belongs to, or None for an unknown key."""
    if not key.startswith(KEY_PREFIX) or len(key) < len(KEY_PREFIX) + PREFIX_LENGTH:
        return None
    prefix = key[len(KEY_PREFIX) : len(KEY_PREFIX) + PREFIX_LENGTH]
    digest = _hash(key)
    for row in conn.execute(_BY_KEY_PREFIX(conn), {"prefix": prefix}):
        if hmac.compare_digest(row.key_hash, digest):
            return _tenant(row)
    return None


def get_tenant(conn: Connection, tenant_id: int) -> Tenant:
    """The tenant with this id; NotFoundError when there is none."""
    row = conn.execute(select(tenants).where(tenants.c.id == tenant_id)).first()
    if row is None:
        raise NotFoundError(f"no tenant with id {tenant_id}")
    return _tenant(row)


def tenant_by_name(conn: Connection, name: str) -> Tenant | None:
    """The tenant with this name, or None."""
    row = conn.execute(select(tenants).where(tenants.c.name == name)).first()
    return _tenant(row) if row is not None else None


#: the settings PATCH /v1/tenant may change (the DKIM key arrives encrypted)
SETTINGS = (
    "tracking",
    "bounce_domain",
    "dkim_selector",
    "dkim_key_encrypted",
    "block_threshold",
    "rate_per_minute",
    "domain_rate_per_minute",
)


def update_tenant_settings(conn: Connection, tenant_id: int, **values: object) -> Tenant:
    """Change some of :data:`SETTINGS`; the tenant as it now is."""
    unknown = set(values) - set(SETTINGS)
    if unknown:
        raise ValueError(f"not a tenant setting: {', '.join(sorted(unknown))}")
    if values:
        conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(**values))
    return get_tenant(conn, tenant_id)


#: tenants among some ids: read for every claimed batch
_BY_IDS = Prepared(lambda dialect: select(tenants).where(in_array(dialect, tenants.c.id, "ids")))


def tenants_by_id(conn: Connection, tenant_ids: Iterable[int]) -> dict[int, Tenant]:
    """The tenants of ``tenant_ids`` (one query); unknown ids are left out."""
    wanted = sorted(set(tenant_ids))
    if not wanted:
        return {}
    rows = conn.execute(_BY_IDS(conn), {"ids": array(conn, wanted)})
    return {row.id: _tenant(row) for row in rows}
