"""The database schema (SQLAlchemy Core tables).

Changing a table here needs an Alembic revision in ``migrations/versions``;
a test compares the migrated database with these tables.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from courrier.store.types import JSONType, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

# BigInteger ids on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")

tenants = Table(
    "tenants",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("from_email", String(320), nullable=False),
    Column("from_name", String(200), nullable=True),
    Column("reply_to", String(320), nullable=True),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("locale", String(16), nullable=False, server_default="en"),
    Column("created_at", UTCDateTime(), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("prefix", String(16), nullable=False, index=True),
    Column("key_hash", String(128), nullable=False, unique=True),
    Column("label", String(200), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

contacts = Table(
    "contacts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("name", String(200), nullable=True),
    Column("phone", String(32), nullable=True),
    Column("locale", String(16), nullable=True),
    Column("timezone", String(64), nullable=True),
    Column("roles", JSONType, nullable=False, default=list),
    Column("staff_profiles", JSONType, nullable=False, default=list),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "external_id"),
)

contact_addresses = Table(
    "contact_addresses",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    Column("address", String(320), nullable=False),  # normalised: lower-cased
    Column("is_primary", Boolean, nullable=False, default=False),
    UniqueConstraint("contact_id", "address"),
    Index("ix_contact_addresses_tenant_address", "tenant_id", "address"),
)

subjects = Table(
    "subjects",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("state", JSONType, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "type", "external_id"),
)

subject_versions = Table(
    "subject_versions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("subject_id", Id, ForeignKey("subjects.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("state", JSONType, nullable=False),
    Column("event_id", Id, nullable=True),
    Column("recorded_at", UTCDateTime(), nullable=False),
    UniqueConstraint("subject_id", "version"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(100), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("subject_id", Id, ForeignKey("subjects.id", ondelete="CASCADE"), nullable=True),
    Column("payload", JSONType, nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("response", JSONType, nullable=True),  # the answer given, replayed on a repeat
    UniqueConstraint("tenant_id", "idempotency_key"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", Id, ForeignKey("events.id", ondelete="SET NULL"), nullable=True),
    Column("subject_id", Id, ForeignKey("subjects.id", ondelete="SET NULL"), nullable=True),
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True),
    Column("kind", String(100), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("address", String(320), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_reason", Text, nullable=True),
    Column("priority", Integer, nullable=False, default=50),  # higher leaves first
    Column("due_at", UTCDateTime(), nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    # (subject, kind, recipient, channel, occurrence): a send is claimed once
    Column("send_key", String(400), nullable=False),
    Column("message_id_header", String(255), nullable=False),
    Column("locale", String(16), nullable=False),
    Column("from_addr", String(320), nullable=False),
    Column("from_name", String(200), nullable=True),
    Column("reply_to", String(320), nullable=True),
    Column("to_name", String(200), nullable=True),
    Column("subject_line", Text, nullable=False),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text, nullable=True),
    # [{"filename", "content_type", "content" (text), "method"?}]
    Column("attachments", JSONType, nullable=False, default=list),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    UniqueConstraint("tenant_id", "send_key"),
    Index("ix_messages_claim", "status", "priority", "due_at"),
    Index("ix_messages_tenant_subject", "tenant_id", "subject_id"),
    Index("ix_messages_tenant_contact", "tenant_id", "contact_id"),
    Index("ix_messages_tenant_id", "tenant_id", "id"),
    Index("ix_messages_message_id_header", "message_id_header"),
)

message_events = Table(
    "message_events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),  # the status after this entry
    Column("entry", String(16), nullable=False),  # planned, claimed, attempt, sent, retry, failed, released...
    Column("reason", Text, nullable=True),
    Column("data", JSONType, nullable=True),  # e.g. {"code": 451, "worker": "...", "attempt": 2}
)

captured_mails = Table(
    "captured_mails",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True),
    Column("message_id_header", String(255), nullable=True, index=True),
    Column("envelope_from", String(320), nullable=True),
    Column("recipients", JSONType, nullable=False),
    Column("subject_line", Text, nullable=True),
    Column("raw", LargeBinary, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
)

ALL_TABLES = [t.name for t in metadata.sorted_tables]

__all__ = [
    "ALL_TABLES",
    "api_keys",
    "captured_mails",
    "contact_addresses",
    "contacts",
    "events",
    "message_events",
    "messages",
    "metadata",
    "subject_versions",
    "subjects",
    "tenants",
]
