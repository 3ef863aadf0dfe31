"""``GET`` and ``PATCH /v1/tenant``: how the calling tenant's mail leaves.

Sending identity (bounce domain, DKIM selector and private key), tracking,
the number of errors that blocks an address, and sending rates. The DKIM
private key is write-only: it is checked by loading it, stored encrypted
(:mod:`courrier.secretbox`), and never shown again; ``GET`` shows the DNS
TXT record to publish instead. A field left out of a PATCH keeps its value;
``null`` clears the ones that may be empty.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from courrier.api.auth import AppSettings, CurrentTenant, DbEngine
from courrier.errors import ValidationError
from courrier.render.dkim import SELECTOR, load_private_key, normalised_pem, public_key_record
from courrier.render.headers import check_address
from courrier.secretbox import SecretBox
from courrier.store.tenants import Tenant, get_tenant, update_tenant_settings

router = APIRouter(prefix="/v1/tenant", tags=["tenant"])


class DkimOut(BaseModel):
    """The DKIM selector and the TXT record to publish at ``<selector>._domainkey.<domain>``."""

    selector: str
    domain: str
    public_key_dns_record: str


class TenantOut(BaseModel):
    """The tenant's identity and sending settings (the DKIM private key is never shown)."""

    id: int
    name: str
    from_email: str
    from_name: str | None
    reply_to: str | None
    timezone: str
    locale: str
    tracking: bool
    bounce_domain: str | None
    dkim: DkimOut | None
    block_threshold: int
    rate_per_minute: int | None
    domain_rate_per_minute: int | None


class TenantPatch(BaseModel):
    """What may change; a field left out keeps its value."""

    model_config = ConfigDict(extra="forbid")

    tracking: bool | None = Field(None, description="Open pixel, tracked links, 'view online'.")
    bounce_domain: str | None = Field(
        None, max_length=253, description="Domain of the VERP bounce address; null: the From's."
    )
    dkim_selector: str | None = Field(
        None, max_length=63, pattern=SELECTOR, description="null removes DKIM signing."
    )
    dkim_private_key: str | None = Field(
        None, max_length=20000, description="RSA private key, PEM; write-only."
    )
    block_threshold: int | None = Field(None, ge=1, le=1000)
    rate_per_minute: int | None = Field(None, ge=1, le=1_000_000)
    domain_rate_per_minute: int | None = Field(None, ge=1, le=1_000_000)


def tenant_out(tenant: Tenant, settings: Any) -> TenantOut:
    dkim = None
    if tenant.dkim_selector and tenant.dkim_key_encrypted:
        pem = SecretBox(settings).decrypt(tenant.dkim_key_encrypted, "DKIM private key")
        dkim = DkimOut(
            selector=tenant.dkim_selector,
            domain=tenant.mail_domain,
            public_key_dns_record=public_key_record(load_private_key(pem)),
        )
    return TenantOut(
        id=tenant.id,
        name=tenant.name,
        from_email=tenant.from_email,
        from_name=tenant.from_name,
        reply_to=tenant.reply_to,
        timezone=tenant.timezone,
        locale=tenant.locale,
        tracking=tenant.tracking,
        bounce_domain=tenant.bounce_domain,
        dkim=dkim,
        block_threshold=tenant.block_threshold,
        rate_per_minute=tenant.rate_per_minute,
        domain_rate_per_minute=tenant.domain_rate_per_minute,
    )


@router.get("", response_model=TenantOut, summary="The tenant's sending settings")
def read_tenant(tenant: CurrentTenant, settings: AppSettings) -> TenantOut:
    return tenant_out(tenant, settings)


def changes_of(body: TenantPatch, tenant: Tenant, settings: Any) -> dict[str, Any]:
    """The stored values a PATCH sets; ValidationError naming the field for a bad one."""
    given = body.model_fields_set
    changes: dict[str, Any] = {}
    for name in ("tracking", "block_threshold"):
        if name in given:
            if getattr(body, name) is None:
                raise ValidationError("may not be null", field=name)
            changes[name] = getattr(body, name)
    for name in ("rate_per_minute", "domain_rate_per_minute"):
        if name in given:
            changes[name] = getattr(body, name)
    if "bounce_domain" in given:
        domain = (body.bounce_domain or "").strip().lower() or None
        if domain is not None:
            try:
                domain = check_address(f"bounces@{domain}", "bounce_domain").partition("@")[2]
            except ValidationError as exc:
                raise ValidationError("is not a domain name", field="bounce_domain") from exc
        changes["bounce_domain"] = domain
    if "dkim_private_key" in given and body.dkim_private_key is not None:
        key = load_private_key(body.dkim_private_key, "dkim_private_key")
        changes["dkim_key_encrypted"] = SecretBox(settings).encrypt(normalised_pem(key))
    if "dkim_selector" in given:
        changes["dkim_selector"] = body.dkim_selector
        if body.dkim_selector is None:
            changes["dkim_key_encrypted"] = None
    selector = changes.get("dkim_selector", tenant.dkim_selector)
    key_stored = changes.get("dkim_key_encrypted", tenant.dkim_key_encrypted)
    if selector and not key_stored:
        raise ValidationError("send dkim_private_key with the selector", field="dkim_private_key")
    if key_stored and not selector:
        raise ValidationError("send dkim_selector with the key", field="dkim_selector")
    return changes


@router.patch("", response_model=TenantOut, summary="Change the tenant's sending settings")
def change_tenant(
    body: TenantPatch, tenant: CurrentTenant, engine: DbEngine, settings: AppSettings
) -> TenantOut:
    changes = changes_of(body, tenant, settings)
    with engine.begin() as conn:
        updated = (
            update_tenant_settings(conn, tenant.id, **changes)
            if changes
            else get_tenant(conn, tenant.id)
        )
    return tenant_out(updated, settings)
