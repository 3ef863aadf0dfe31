"""Deliverability: sending identity, follow-ups, address health, webhooks.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
When = sa.DateTime(timezone=True)


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"],
        ["tenants.id"],
        name=op.f(f"fk_{table}_tenant_id_tenants"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.add_column(
            sa.Column("block_threshold", sa.Integer(), server_default="12", nullable=False)
        )
        batch_op.add_column(sa.Column("bounce_domain", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("dkim_selector", sa.String(length=63), nullable=True))
        batch_op.add_column(sa.Column("dkim_key_encrypted", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("tracking", sa.Boolean(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("rate_per_minute", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("domain_rate_per_minute", sa.Integer(), nullable=True))
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("cc_addrs", JSONType, nullable=True))
        batch_op.add_column(sa.Column("bcc_addrs", JSONType, nullable=True))
        batch_op.add_column(sa.Column("follow_up", JSONType, nullable=True))
        batch_op.add_column(sa.Column("follow_up_of", Id, nullable=True))
        batch_op.add_column(sa.Column("follow_up_index", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_messages_follow_up_of_messages"),
            "messages",
            ["follow_up_of"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index("ix_messages_follow_up_of", ["follow_up_of"])
        batch_op.create_index("ix_messages_tenant_address", ["tenant_id", "address"])
        batch_op.create_index("ix_messages_sent_at", ["sent_at"])
    with op.batch_alter_table("inbound_mails") as batch_op:
        batch_op.add_column(sa.Column("feedback_at", When, nullable=True))
        batch_op.create_index("ix_inbound_mails_feedback_at", ["feedback_at"])
    # Mail filed before this upgrade is history, not news: applying it now would bounce old
    # messages, block addresses and post old webhooks. Only mail read from now on is applied.
    op.execute("UPDATE inbound_mails SET feedback_at = received_at WHERE feedback_at IS NULL")
    op.execute(
        "UPDATE bounce_reports SET applied_at = (SELECT m.received_at FROM inbound_mails m"
        " WHERE m.id = bounce_reports.inbound_mail_id) WHERE applied_at IS NULL"
    )

    op.create_table(
        "address_health",
        sa.Column("id", Id, nullable=False),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", When, nullable=True),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("blocked_at", When, nullable=True),
        sa.Column("updated_at", When, nullable=False),
        _tenant_fk("address_health"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_address_health")),
        sa.UniqueConstraint(
            "tenant_id", "address", name=op.f("uq_address_health_tenant_id_address")
        ),
    )
    op.create_index("ix_address_health_tenant_blocked", "address_health", ["tenant_id", "blocked"])
    op.create_table(
        "address_errors",
        sa.Column("id", Id, nullable=False),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("message_id", Id, nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("counted", sa.Boolean(), nullable=False),
        _tenant_fk("address_errors"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_address_errors_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_address_errors")),
    )
    op.create_index(
        "ix_address_errors_tenant_address", "address_errors", ["tenant_id", "address", "id"]
    )
    op.create_table(
        "address_audit",
        sa.Column("id", Id, nullable=False),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("error_count", sa.Integer(), nullable=False),
        _tenant_fk("address_audit"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_address_audit")),
    )
    op.create_index(
        "ix_address_audit_tenant_address", "address_audit", ["tenant_id", "address", "id"]
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", Id, nullable=False),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("event_types", JSONType, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("created_at", When, nullable=False),
        _tenant_fk("webhook_endpoints"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index("ix_webhook_endpoints_tenant_id", "webhook_endpoints", ["tenant_id", "id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", Id, nullable=False),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("endpoint_id", Id, nullable=False),
        sa.Column("message_id", Id, nullable=True),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("payload", JSONType, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", When, nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", When, nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("delivered_at", When, nullable=True),
        _tenant_fk("webhook_deliveries"),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_webhook_deliveries_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    op.create_index(
        "ix_webhook_deliveries_tenant_endpoint",
        "webhook_deliveries",
        ["tenant_id", "endpoint_id", "id"],
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", Id, nullable=False),
        sa.Column("delivery_id", Id, nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index("ix_webhook_attempts_delivery_id", "webhook_attempts", ["delivery_id", "id"])


def downgrade() -> None:
    for table in (
        "webhook_attempts",
        "webhook_deliveries",
        "webhook_endpoints",
        "address_audit",
        "address_errors",
        "address_health",
    ):
        op.drop_table(table)
    with op.batch_alter_table("inbound_mails") as batch_op:
        batch_op.drop_index("ix_inbound_mails_feedback_at")
        batch_op.drop_column("feedback_at")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_index("ix_messages_sent_at")
        batch_op.drop_index("ix_messages_tenant_address")
        batch_op.drop_index("ix_messages_follow_up_of")
        batch_op.drop_constraint(op.f("fk_messages_follow_up_of_messages"), type_="foreignkey")
        for column in ("follow_up_index", "follow_up_of", "follow_up", "bcc_addrs", "cc_addrs"):
            batch_op.drop_column(column)
    with op.batch_alter_table("tenants") as batch_op:
        for column in (
            "domain_rate_per_minute",
            "rate_per_minute",
            "tracking",
            "dkim_key_encrypted",
            "dkim_selector",
            "bounce_domain",
            "block_threshold",
        ):
            batch_op.drop_column(column)
