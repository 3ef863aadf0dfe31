"""The one settings object. Nothing else in Courrier reads the environment.

Every field is documented in ``docs/settings.md``; a test checks that each
field appears there.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from courrier.errors import ConfigurationError
from courrier.netcheck import IPNetwork, parse_networks


class SmtpTarget:
    """A parsed ``COURRIER_SMTP_URL``: where and how to send mail."""

    __slots__ = ("host", "password", "port", "security", "username")

    def __init__(
        self,
        host: str,
        port: int,
        security: Literal["plain", "starttls", "tls"],
        username: str | None,
        password: str | None,
    ) -> None:
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password

    def __repr__(self) -> str:
        auth = f"{self.username}:***@" if self.username else ""
        return f"SmtpTarget({self.security}://{auth}{self.host}:{self.port})"


def parse_smtp_url(url: str) -> SmtpTarget:
    """Parse ``smtp://[user:pass@]host[:port][?starttls=yes]`` or ``smtps://...``.

    ``smtp://`` is plain unless ``?starttls=yes``; ``smtp+starttls://`` is
    the same as that; ``smtps://`` is TLS from the first byte (port 465).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in {"smtp", "smtps", "smtp+starttls"}:
        raise ConfigurationError(
            f"COURRIER_SMTP_URL must start with smtp://, smtp+starttls:// or smtps://, not {scheme or 'nothing'}://"
        )
    if not parts.hostname:
        raise ConfigurationError("COURRIER_SMTP_URL names no host: write smtp://host:port")
    security: Literal["plain", "starttls", "tls"] = "plain"
    if scheme == "smtps":
        security = "tls"
    elif scheme == "smtp+starttls" or "starttls=yes" in parts.query.lower():
        security = "starttls"
    try:
        port = parts.port or (465 if security == "tls" else 587 if security == "starttls" else 25)
    except ValueError as exc:
        raise ConfigurationError(f"COURRIER_SMTP_URL has a bad port: {exc}") from exc
    return SmtpTarget(
        host=parts.hostname,
        port=port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class Settings(BaseSettings):
    """Courrier's configuration, read from ``COURRIER_*`` variables and ``.env``."""

    model_config = SettingsConfigDict(
        env_prefix="COURRIER_", env_file=".env", extra="ignore", validate_default=True
    )

    database_url: str = Field(
        default="sqlite:///courrier.db",
        description="SQLAlchemy URL: sqlite:///path/file.db or postgresql://user@host:5432/db.",
    )
    smtp_url: SecretStr | None = Field(
        default=None,
        description="Where mail goes: smtp://, smtp+starttls:// or smtps://user:password@host:port. Unset: local capture.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs links. Unset: a random key is kept in courrier.secret beside the working folder.",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Public address of the API, for links in mails.",
    )
    host: str = Field(
        default="127.0.0.1", description="Address `courrier serve` and `courrier api` listen on."
    )
    port: int = Field(
        default=8000,
        ge=0,
        le=65535,
        description="Port `courrier serve` and `courrier api` listen on.",
    )
    capture_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port of the local mail capture (only when no SMTP URL is set); 0 picks a free one.",
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port on which `courrier worker` serves Prometheus metrics at /metrics (on COURRIER_HOST); 0: not served.",
    )
    smtp_pool_size: int = Field(
        default=4, ge=1, le=64, description="SMTP connections a worker keeps open."
    )
    smtp_timeout: float = Field(
        default=30.0, gt=0, description="Seconds before an SMTP command times out."
    )
    batch_size: int = Field(
        default=100, ge=1, le=10_000, description="Messages a worker claims at once."
    )
    lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="How long a claim holds before another worker may take it over.",
    )
    max_attempts: int = Field(
        default=8, ge=1, description="Attempts before a transient failure becomes final."
    )
    retry_base_seconds: float = Field(
        default=30.0, gt=0, description="First retry delay; doubles each attempt."
    )
    retry_max_seconds: float = Field(
        default=3600.0, gt=0, description="Longest delay between two retries."
    )
    poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Longest a worker sleeps before looking for due messages unprompted.",
    )
    encryption_key: SecretStr | None = Field(
        default=None,
        description="Encrypts stored mailbox passwords (Fernet); comma-separated keys rotate, the first encrypts. Unset: derived from the secret key.",
    )
    documents_dir: Path = Field(
        default=Path("documents"),
        description="Folder where received attachments are kept, once each, named by their SHA-256.",
    )
    inbound_max_bytes: int = Field(
        default=25_000_000,
        ge=1_000,
        description="Largest received mail imported whole; a larger one is recorded with its headers and the reason.",
    )
    imap_poll_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often a mailbox without IMAP IDLE is checked for new mail.",
    )
    imap_timeout: float = Field(
        default=30.0, gt=0, description="Seconds before an IMAP command times out."
    )
    imap_retry_seconds: float = Field(
        default=5.0,
        gt=0,
        description="First wait before reconnecting to a mailbox that failed; doubles up to 5 minutes.",
    )
    imap_allowed_networks: str = Field(
        default="",
        description="Comma-separated CIDRs of internal networks a tenant's mailbox may connect to (e.g. 192.168.1.0/24 for an IMAP server on the LAN). Empty: only public addresses.",
    )
    imap_lease_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How long a worker holds a mailbox before another may read it (one reader per mailbox).",
    )
    inbound_batch_size: int = Field(
        default=20,
        ge=1,
        le=1_000,
        description="Mails fetched and committed together by the mailbox reader.",
    )
    webhook_allowed_networks: str = Field(
        default="",
        description="Comma-separated CIDRs of internal networks webhook URLs may point to (e.g. 10.0.0.0/8 for a receiver on the LAN). Empty: only public addresses.",
    )
    webhook_ca_file: str = Field(
        default="",
        description="PEM file of extra CA certificates webhook receivers' TLS certificates may chain to (a private CA), trusted besides the usual public ones. Empty: only the public ones.",
    )
    webhook_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a webhook receiver has to answer one request."
    )
    webhook_max_attempts: int = Field(
        default=8,
        ge=1,
        le=20,
        description="Attempts at posting one webhook before it is marked failed (retries wait 5 s, 5 min, 30 min, 2 h, 5 h, then 10 h).",
    )
    webhook_batch_size: int = Field(
        default=20, ge=1, le=1_000, description="Webhook deliveries a worker claims at once."
    )
    rate_per_minute: int = Field(
        default=0,
        ge=0,
        description="Messages a tenant may send a minute, unless the tenant has its own limit; 0: no limit.",
    )
    domain_rate_per_minute: int = Field(
        default=0,
        ge=0,
        description="Messages a tenant may send a minute to one recipient domain (gmail.com...), unless the tenant has its own limit; 0: no limit.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level."
    )
    log_format: Literal["console", "json"] = Field(
        default="console", description="Log lines for people or machines."
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
            raise ValueError(
                "COURRIER_DATABASE_URL must be sqlite:///file.db or postgresql://user@host:port/name"
            )
        if value.startswith("postgres:"):
            value = "postgresql:" + value[len("postgres:") :]
        return value

    @field_validator("imap_allowed_networks", "webhook_allowed_networks")
    @classmethod
    def _known_networks(cls, value: str, info: ValidationInfo) -> str:
        try:
            parse_networks(value, f"COURRIER_{(info.field_name or '').upper()}")
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @property
    def imap_networks(self) -> tuple[IPNetwork, ...]:
        """The parsed ``COURRIER_IMAP_ALLOWED_NETWORKS``: internal networks mailboxes may reach."""
        return parse_networks(self.imap_allowed_networks, "COURRIER_IMAP_ALLOWED_NETWORKS")

    @property
    def webhook_networks(self) -> tuple[IPNetwork, ...]:
        """The parsed ``COURRIER_WEBHOOK_ALLOWED_NETWORKS``: internal networks webhooks may reach."""
        return parse_networks(self.webhook_allowed_networks, "COURRIER_WEBHOOK_ALLOWED_NETWORKS")

    @property
    def smtp(self) -> SmtpTarget | None:
        """The parsed SMTP target, or None for local capture."""
        if self.smtp_url is None or not self.smtp_url.get_secret_value():
            return None
        return parse_smtp_url(self.smtp_url.get_secret_value())

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    def signing_key(self) -> str:
        """The key that signs links; generated once and kept when not set."""
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value()
        path = Path("courrier.secret")
        if path.exists():
            return path.read_text().strip()
        key = secrets.token_urlsafe(32)
        path.write_text(key + "\n")
        path.chmod(0o600)
        return key
