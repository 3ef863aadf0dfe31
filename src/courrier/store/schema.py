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
    text,
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
    # shown in every mail's footer and header (migration 0003)
    Column("address", String(500), nullable=True),
    Column("logo_url", String(2000), nullable=True),
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
    # staff copy of every booking: "off", "each" (one mail per booking) or "digest" (daily)
    Column("booking_copy", String(16), nullable=False, server_default="off"),
    UniqueConstraint("tenant_id", "external_id"),
)

#: a contact who gets staff mail: a staff profile, or a copy of every booking. Literals, not
#: parameters, so that the index below serves the look-ups that repeat it (prepared or not,
#: on either database): planning reads a tenant's staff for every batch of events, and
#: without it read every contact of the tenant (4 ms a look-up among 20,000).
STAFF_ONLY = text("(booking_copy != 'off' OR staff_profiles != '[]')")
Index(
    "ix_contacts_staff",
    contacts.c.tenant_id,
    contacts.c.id,
    sqlite_where=STAFF_ONLY,
    postgresql_where=STAFF_ONLY,
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
    UniqueConstraint("tenant_id", "idempotency_key"),
)

# The answer given to each event, replayed on a repeat of its key (migration 0009: it was a
# column of ``events``, set by one UPDATE an event once its batch was planned, rewriting a row
# that carries the payload; these narrow rows are written with the batch's other rows).
event_answers = Table(
    "event_answers",
    metadata,
    Column("event_id", Id, ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
    Column("response", JSONType, nullable=False),
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
    Column("subject_line", Text, nullable=False),  # the bodies: message_contents
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    UniqueConstraint("tenant_id", "send_key"),
    Index("ix_messages_status", "status"),  # counted per status for /metrics
    Index("ix_messages_tenant_subject", "tenant_id", "subject_id"),
    Index("ix_messages_tenant_contact", "tenant_id", "contact_id"),
    Index("ix_messages_tenant_id", "tenant_id", "id"),
    Index("ix_messages_message_id_header", "message_id_header"),
)

# A message's bodies, apart from its row (migration 0005): the queue rewrites a message's row at
# every claim and outcome, and a row without its few kilobytes of text is a few hundred bytes
# to rewrite (and to log) instead of several thousand. Written once when the message is planned
# (again when a change re-renders it), read to send it and to show it.
message_contents = Table(
    "message_contents",
    metadata,
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text, nullable=True),
    # [{"filename", "content_type", "content" (text), "method"?}]
    Column("attachments", JSONType, nullable=False, default=list),
)

message_events = Table(
    "message_events",
    metadata,
    Column("id", Id, primary_key=True),
    Column(
        "message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),  # the status after this entry
    Column(
        "entry", String(16), nullable=False
    ),  # planned, claimed, attempt, sent, retry, failed, released...
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
    "event_answers",
    "events",
    "message_contents",
    "message_events",
    "messages",
    "metadata",
    "subject_versions",
    "subjects",
    "tenants",
]


# --- The shared member inbox (migration 0002) -------------------------------------------------

mailboxes = Table(
    "mailboxes",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("label", String(200), nullable=False),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("security", String(16), nullable=False),  # tls, starttls, plain (loopback only)
    Column("username", String(320), nullable=False),
    Column("password_encrypted", Text, nullable=False),  # Fernet token; never returned
    Column("folders", JSONType, nullable=False),  # ["INBOX", ...]
    Column("move_to", String(255), nullable=True),  # folder for processed mail, moved after commit
    Column("enabled", Boolean, nullable=False, default=True),
    Column("last_error", Text, nullable=True),
    Column("last_checked_at", UTCDateTime(), nullable=True),
    # one reader at a time per mailbox, whatever the number of worker processes
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_mailboxes_tenant_id", "tenant_id", "id"),
)

mailbox_folders = Table(
    "mailbox_folders",
    metadata,
    Column("id", Id, primary_key=True),
    Column("mailbox_id", Id, ForeignKey("mailboxes.id", ondelete="CASCADE"), nullable=False),
    Column("folder", String(255), nullable=False),
    Column("uidvalidity", BigInteger, nullable=False),
    Column("last_uid", BigInteger, nullable=False),  # every mail up to here is committed
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("mailbox_id", "folder"),
)

inbound_mails = Table(
    "inbound_mails",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("mailbox_id", Id, ForeignKey("mailboxes.id", ondelete="SET NULL"), nullable=True),
    Column("folder", String(255), nullable=True),
    Column("uidvalidity", BigInteger, nullable=True),
    Column("uid", BigInteger, nullable=True),
    Column("message_id_header", String(998), nullable=True),
    Column("content_hash", String(64), nullable=False),  # SHA-256 of the raw mail
    Column("kind", String(16), nullable=False),  # member, bounce, auto_reply
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True),
    Column("assigned_by", String(16), nullable=True),  # match, staff
    Column(
        "reply_to_message_id", Id, ForeignKey("messages.id", ondelete="SET NULL"), nullable=True
    ),
    Column("from_addr", String(320), nullable=True),  # normalised
    Column("from_name", Text, nullable=True),
    Column("to_addrs", JSONType, nullable=False),
    Column("cc_addrs", JSONType, nullable=False),
    Column("subject_line", Text, nullable=True),
    Column("sent_at", UTCDateTime(), nullable=True),  # the Date header
    Column("received_at", UTCDateTime(), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("headers", JSONType, nullable=False),  # [[name, decoded value], ...]
    Column("body_text", Text, nullable=True),
    Column("body_html", Text, nullable=True),  # as received; made safe when shown
    Column("defects", JSONType, nullable=False),  # what could not be read, in words
    Column("skipped_reason", Text, nullable=True),  # e.g. over the size limit: headers only
    Index("ix_inbound_mails_tenant_id", "tenant_id", "id"),
    Index("ix_inbound_mails_tenant_contact", "tenant_id", "contact_id"),
    Index("ix_inbound_mails_tenant_message_id", "tenant_id", "message_id_header"),
    UniqueConstraint("tenant_id", "content_hash"),
)

inbound_attachments = Table(
    "inbound_attachments",
    metadata,
    Column("id", Id, primary_key=True),
    Column(
        "inbound_mail_id", Id, ForeignKey("inbound_mails.id", ondelete="CASCADE"), nullable=False
    ),
    Column("position", Integer, nullable=False),
    Column("filename", Text, nullable=True),
    Column("content_type", String(255), nullable=False),
    Column("disposition", String(16), nullable=False),  # attachment, inline
    Column("content_id", String(998), nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=True),  # the stored file; None when not kept
    UniqueConstraint("inbound_mail_id", "position"),
)

documents = Table(
    "documents",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("filename", Text, nullable=True),
    Column("content_type", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("origin", String(32), nullable=False),  # inbound
    Column(
        "inbound_mail_id", Id, ForeignKey("inbound_mails.id", ondelete="SET NULL"), nullable=True
    ),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("contact_id", "sha256"),
    Index("ix_documents_tenant_contact", "tenant_id", "contact_id"),
)

bounce_reports = Table(
    "bounce_reports",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column(
        "inbound_mail_id", Id, ForeignKey("inbound_mails.id", ondelete="CASCADE"), nullable=False
    ),
    Column("recipient", String(320), nullable=False),  # normalised failed address
    Column("action", String(32), nullable=True),  # failed, delayed, delivered, relayed, expanded
    Column("status", String(32), nullable=True),  # RFC 3463 code, e.g. 5.1.1
    Column("diagnostic", Text, nullable=True),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="SET NULL"), nullable=True),
    Column("applied_at", UTCDateTime(), nullable=True),  # set by deliverability once counted
    Index("ix_bounce_reports_pending", "tenant_id", "applied_at"),
)

INBOUND_TABLES = [
    "mailboxes",
    "mailbox_folders",
    "inbound_mails",
    "inbound_attachments",
    "documents",
    "bounce_reports",
]

# --- The notification catalogue (migration 0003) ---

tenant_kinds = Table(
    "tenant_kinds",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    # a default kind: the tenant's overrides (offsets, conditions...); a custom kind: its whole definition
    Column("custom", Boolean, nullable=False, default=False),
    Column("definition", JSONType, nullable=False, default=dict),
    # {"<locale>": {"subject": ..., "text": ..., "html": ...}}, checked when saved
    Column("templates", JSONType, nullable=False, default=dict),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "name"),
)

contact_preferences = Table(
    "contact_preferences",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("contact_id", Id, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(100), nullable=False),  # a kind name, or "*" for every kind
    Column("channel", String(16), nullable=False),  # a channel, or "*" for every channel
    Column("enabled", Boolean, nullable=False),
    Column("set_by", String(16), nullable=False),  # contact (preference page) or staff (API)
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("contact_id", "kind", "channel"),
)

CATALOGUE_TABLES = ["tenant_kinds", "contact_preferences"]

# --- Deliverability: identity, tracking, follow-ups, address health, webhooks (migration 0004) ---
#
# tenants gain: block_threshold, bounce_domain, dkim_selector, dkim_key_encrypted, tracking,
# rate_per_minute, domain_rate_per_minute; messages gain cc/bcc, a follow-up policy and the
# link of a follow-up to its original; inbound_mails gain feedback_at (applied to address
# health, follow-ups and bounces). Declared on the tables above through append_column so one
# table stays one object.

tenants.append_column(
    Column("block_threshold", Integer, nullable=False, server_default="12"),
)
tenants.append_column(Column("bounce_domain", String(255), nullable=True))  # VERP; None: From's
tenants.append_column(Column("dkim_selector", String(63), nullable=True))
tenants.append_column(Column("dkim_key_encrypted", Text, nullable=True))  # Fernet; never returned
tenants.append_column(Column("tracking", Boolean, nullable=False, server_default="1"))
tenants.append_column(Column("rate_per_minute", Integer, nullable=True))  # None: the setting
tenants.append_column(Column("domain_rate_per_minute", Integer, nullable=True))

messages.append_column(Column("cc_addrs", JSONType, nullable=True))  # ["a@x", ...]; None: none
messages.append_column(Column("bcc_addrs", JSONType, nullable=True))
# {"delays_minutes": [60, 1440, 4320], "cc_bcc": false}: follow-ups while not accessed
messages.append_column(Column("follow_up", JSONType, nullable=True))
messages.append_column(
    Column("follow_up_of", Id, ForeignKey("messages.id", ondelete="SET NULL"), nullable=True)
)
messages.append_column(Column("follow_up_index", Integer, nullable=True))  # 1, 2, 3
Index("ix_messages_tenant_address", messages.c.tenant_id, messages.c.address)
# (migration 0006) only the rows that have one: most messages are no follow-up, and none is
# sent when planned or claimed, so neither insert nor claim writes an entry in these
for _column in (messages.c.follow_up_of, messages.c.sent_at):
    _filled = text(f"{_column.name} IS NOT NULL")
    Index(f"ix_messages_{_column.name}", _column, sqlite_where=_filled, postgresql_where=_filled)

# The queue's indexes (migration 0006), each holding only the messages of one waiting status,
# so that a claim reads the few rows it takes instead of every waiting message, and sent
# messages (almost all of the table) are in none of them. The queries that use one name its
# status as a literal (store.queue): neither SQLite nor PostgreSQL's generic plans match a
# partial index against a bound parameter.
WAITING_INDEXES = {
    # due now (or again after a failure): taken in the claim's order, most urgent first
    "ix_messages_due": (
        "due",
        (messages.c.channel, messages.c.priority.desc(), messages.c.due_at, messages.c.id),
    ),
    # planned for later: the ones whose time has come, and the next due time
    "ix_messages_planned": ("planned", (messages.c.channel, messages.c.due_at, messages.c.id)),
    # leased to a worker: the leases that expired, and the next expiry
    "ix_messages_leased": ("sending", (messages.c.channel, messages.c.lease_until, messages.c.id)),
}
for _name, (_status, _columns) in WAITING_INDEXES.items():
    _where = text(f"status = '{_status}'")
    Index(_name, *_columns, sqlite_where=_where, postgresql_where=_where)

inbound_mails.append_column(Column("feedback_at", UTCDateTime(), nullable=True))
Index("ix_inbound_mails_feedback_at", inbound_mails.c.feedback_at)

address_health = Table(
    "address_health",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("address", String(320), nullable=False),  # email lower-cased, or phone in E.164
    Column("channel", String(16), nullable=False),  # email, sms
    Column("error_count", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", UTCDateTime(), nullable=True),
    Column("blocked", Boolean, nullable=False, default=False),
    Column("blocked_at", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "address"),
    Index("ix_address_health_tenant_blocked", "tenant_id", "blocked"),
)

address_errors = Table(
    "address_errors",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("address", String(320), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="SET NULL"), nullable=True),
    Column("source", String(16), nullable=False),  # smtp (synchronous reply), dsn (bounce)
    Column("code", Integer, nullable=True),  # SMTP reply code
    Column("status", String(32), nullable=True),  # enhanced status code, e.g. 5.1.1
    Column("text", Text, nullable=True),
    Column("counted", Boolean, nullable=False),  # False: recorded, not an error (a deferral)
    Index("ix_address_errors_tenant_address", "tenant_id", "address", "id"),
)

address_audit = Table(
    "address_audit",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("address", String(320), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("action", String(32), nullable=False),  # blocked, reset, mail_received
    Column("actor", String(200), nullable=False),  # staff name / API key, or "courrier"
    Column("reason", Text, nullable=True),
    Column("error_count", Integer, nullable=False),  # the count before the action
    Index("ix_address_audit_tenant_address", "tenant_id", "address", "id"),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("secret_encrypted", Text, nullable=False),  # Fernet of "whsec_..."; shown once
    Column("event_types", JSONType, nullable=False),  # [] : every type
    Column("enabled", Boolean, nullable=False, default=True),
    Column("description", String(200), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_webhook_endpoints_tenant_id", "tenant_id", "id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column(
        "endpoint_id", Id, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
    ),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="SET NULL"), nullable=True),
    Column("event_type", String(32), nullable=False),  # message.sent, address.blocked, ...
    Column("payload", JSONType, nullable=False),
    Column("status", String(16), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime(), nullable=True),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_tenant_endpoint", "tenant_id", "endpoint_id", "id"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Id, primary_key=True),
    Column(
        "delivery_id", Id, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False
    ),
    Column("at", UTCDateTime(), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_webhook_attempts_delivery_id", "delivery_id", "id"),
)

DELIVERABILITY_TABLES = [
    "address_health",
    "address_errors",
    "address_audit",
    "webhook_endpoints",
    "webhook_deliveries",
    "webhook_attempts",
]
