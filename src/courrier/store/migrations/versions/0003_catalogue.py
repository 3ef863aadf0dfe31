"""The notification catalogue: tenant kinds, contact preferences, staff booking copies.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.add_column(sa.Column("address", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("logo_url", sa.String(length=2000), nullable=True))
    with op.batch_alter_table("contacts") as batch_op:
        batch_op.add_column(
            sa.Column("booking_copy", sa.String(length=16), server_default="off", nullable=False)
        )
    op.create_table(
        "tenant_kinds",
        sa.Column("id", Id, nullable=False),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("custom", sa.Boolean(), nullable=False),
        sa.Column("definition", JSONType, nullable=False),
        sa.Column("templates", JSONType, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tenant_kinds_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_kinds")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_tenant_kinds_tenant_id_name")),
    )
    op.create_table(
        "contact_preferences",
        sa.Column("id", Id, nullable=False),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("contact_id", Id, nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("set_by", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_contact_preferences_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_preferences_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_preferences")),
        sa.UniqueConstraint(
            "contact_id",
            "kind",
            "channel",
            name=op.f("uq_contact_preferences_contact_id_kind_channel"),
        ),
    )


def downgrade() -> None:
    op.drop_table("contact_preferences")
    op.drop_table("tenant_kinds")
    with op.batch_alter_table("contacts") as batch_op:
        batch_op.drop_column("booking_copy")
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.drop_column("logo_url")
        batch_op.drop_column("address")
