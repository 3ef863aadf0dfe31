"""``courrier tenant create NAME``, ``key NAME`` and ``dkim NAME``: tenants, keys, DKIM."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import Connection

from courrier.api.fields import email_address, locale_tag, time_zone
from courrier.cli.errors import one_line_errors
from courrier.cli.runtime import load_settings, open_database
from courrier.clock import utcnow
from courrier.errors import ConfigurationError, ValidationError
from courrier.render.dkim import SELECTOR, load_private_key, normalised_pem, public_key_record
from courrier.secretbox import SecretBox
from courrier.store.tenants import (
    Tenant,
    create_api_key,
    create_tenant,
    tenant_by_name,
    update_tenant_settings,
)

app = typer.Typer(help="Tenants (organisations) and their API keys.", no_args_is_help=True)


def checked(value: str | None, check: Callable[[str], str], option: str) -> str | None:
    """``value`` passed through ``check`` (a validator raising ValueError), or a one-line error."""
    if value is None:
        return None
    try:
        return check(value)
    except ValueError as exc:
        raise ValidationError(f"{option} {value!r} {exc}", field=option) from exc


def add_tenant(
    database_url: str | None,
    name: str,
    *,
    from_email: str,
    from_name: str | None = None,
    reply_to: str | None = None,
    timezone: str = "UTC",
    locale: str = "en",
    address: str | None = None,
    logo_url: str | None = None,
) -> tuple[Tenant, str]:
    """Create a tenant and its first API key; refuse a name already taken."""
    settings = load_settings(database_url=database_url)
    engine = open_database(settings)
    try:
        with engine.begin() as conn:
            if tenant_by_name(conn, name) is not None:
                raise ConfigurationError(
                    f"a tenant named {name!r} exists already: "
                    f"make it a new key with `courrier tenant key {name!r}`"
                )
            now = utcnow()
            tenant = create_tenant(
                conn,
                name,
                from_email=from_email,
                from_name=from_name,
                reply_to=reply_to,
                timezone=timezone,
                locale=locale,
                address=address,
                logo_url=logo_url,
                now=now,
            )
            key = create_api_key(conn, tenant.id, now=now, label="created with the tenant")
    finally:
        engine.dispose()
    return tenant, key


def _existing(conn: Connection, name: str) -> Tenant:
    """The tenant named ``name``; a one-line error saying how to create it when there is none."""
    tenant = tenant_by_name(conn, name)
    if tenant is None:
        raise ConfigurationError(
            f"no tenant named {name!r}: create it with `courrier tenant create {name!r}`"
        )
    return tenant


def _address(value: str) -> str:
    """A postal address: one to 500 characters, line breaks allowed."""
    if not value.strip() or len(value) > 500:
        raise ValueError("must be 1 to 500 characters")
    return value.strip()


def _logo_url(value: str) -> str:
    """An https URL (mail clients block plain http images), at most 2000 characters."""
    if not value.startswith("https://") or len(value) > 2000 or any(c.isspace() for c in value):
        raise ValueError("must be an https:// URL without spaces")
    return value


@app.command("create")
@one_line_errors
def create(
    name: Annotated[str, typer.Argument(help="The organisation's name, unique.")],
    from_email: Annotated[
        str, typer.Option(help="Address mail is sent from.")
    ] = "noreply@example.com",
    from_name: Annotated[
        str | None, typer.Option(help="Name shown beside the From address.")
    ] = None,
    reply_to: Annotated[
        str | None, typer.Option(help="Where replies go (the venue's own address).")
    ] = None,
    timezone: Annotated[
        str, typer.Option(help="The venue's IANA time zone, e.g. Europe/Paris.")
    ] = "UTC",
    locale: Annotated[str, typer.Option(help="Default language of its mail, e.g. fr.")] = "en",
    address: Annotated[
        str | None, typer.Option(help="Postal address, shown at the foot of every mail.")
    ] = None,
    logo_url: Annotated[
        str | None, typer.Option(help="https URL of a logo, shown atop every HTML mail.")
    ] = None,
) -> None:
    """Create a tenant and print its API key (shown this once only)."""
    if not name.strip() or len(name) > 200:
        raise ValidationError("NAME must be 1 to 200 characters", field="name")
    tenant, key = add_tenant(
        None,
        name.strip(),
        from_email=checked(from_email, email_address, "--from-email") or from_email,
        from_name=from_name,
        reply_to=checked(reply_to, email_address, "--reply-to"),
        timezone=checked(timezone, time_zone, "--timezone") or "UTC",
        locale=checked(locale, locale_tag, "--locale") or "en",
        address=checked(address, _address, "--address"),
        logo_url=checked(logo_url, _logo_url, "--logo-url"),
    )
    typer.echo(f"tenant {tenant.name!r} created (id {tenant.id})")
    typer.echo(f"API key (shown once, keep it safe): {key}")


@app.command("key")
@one_line_errors
def new_key(
    name: Annotated[str, typer.Argument(help="The tenant's name.")],
    label: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
) -> None:
    """Make a new API key for an existing tenant and print it (shown this once only)."""
    engine = open_database(load_settings())
    try:
        with engine.begin() as conn:
            tenant = _existing(conn, name)
            key = create_api_key(conn, tenant.id, now=utcnow(), label=label)
    finally:
        engine.dispose()
    typer.echo(f"API key for {tenant.name!r} (shown once, keep it safe): {key}")


@app.command("dkim")
@one_line_errors
def dkim(
    name: Annotated[str, typer.Argument(help="The tenant's name.")],
    selector: Annotated[str, typer.Option(help="The DKIM selector, e.g. mail2026.")],
    key_file: Annotated[
        Path, typer.Option(help="The RSA private key, PEM (openssl genrsa -out key.pem 2048).")
    ],
) -> None:
    """Sign the tenant's mail with DKIM; print the DNS TXT record to publish."""
    if re.fullmatch(SELECTOR, selector) is None:
        raise ValidationError(f"--selector {selector!r} is not a DNS label", field="--selector")
    try:
        pem = key_file.read_text("ascii")
    except (OSError, UnicodeError) as exc:
        raise ValidationError(f"--key-file {str(key_file)!r}: {exc}", field="--key-file") from exc
    try:
        key = load_private_key(pem, "--key-file")
    except ValidationError as exc:
        raise ValidationError(f"--key-file {str(key_file)!r} {exc.message}", "--key-file") from exc
    settings = load_settings()
    engine = open_database(settings)
    try:
        with engine.begin() as conn:
            tenant = _existing(conn, name)
            encrypted = SecretBox(settings).encrypt(normalised_pem(key))
            update_tenant_settings(
                conn, tenant.id, dkim_selector=selector, dkim_key_encrypted=encrypted
            )
    finally:
        engine.dispose()
    typer.echo(f"DKIM on for {tenant.name!r}; publish this TXT record:")
    typer.echo(f'{selector}._domainkey.{tenant.mail_domain} TXT "{public_key_record(key)}"')
