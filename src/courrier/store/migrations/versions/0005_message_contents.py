"""Message bodies in a table of their own.

The queue rewrites a message's row at every claim and outcome; without its
text, HTML and attachments the row is a few hundred bytes instead of a few
kilobytes to rewrite and to log. ``message_contents`` holds them, one row
per message, written when it is planned.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BODY_COLUMNS = ("attachments", "body_html", "body_text")


def upgrade() -> None:
    op.create_table(
        "message_contents",
        sa.Column("message_id", Id, nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("attachments", JSONType, nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_contents_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_contents")),
    )
    op.execute(
        "INSERT INTO message_contents (message_id, body_text, body_html, attachments)"
        " SELECT id, body_text, body_html, attachments FROM messages"
    )
    # SQLite drops a plain column in place (3.35 and later). Alembic's batch mode would
    # rebuild the table instead, and dropping the old messages table with foreign keys on
    # would delete, by cascade, every row referring to it: timelines and these contents.
    for column in BODY_COLUMNS:
        op.execute(f"ALTER TABLE messages DROP COLUMN {column}")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # added in place, NOT NULL with a default on SQLite (which cannot add the constraint later
    # without rebuilding the table: see upgrade)
    for column, kind, empty in (
        ("body_text", "TEXT", "''"),
        ("body_html", "TEXT", None),
        ("attachments", "JSON" if sqlite else "JSONB", "'[]'"),
    ):
        required = f" NOT NULL DEFAULT {empty}" if sqlite and empty else ""
        op.execute(f"ALTER TABLE messages ADD COLUMN {column} {kind}{required}")
    op.execute(
        "UPDATE messages SET body_text = c.body_text, body_html = c.body_html,"
        " attachments = c.attachments FROM message_contents AS c WHERE c.message_id = messages.id"
    )
    if not sqlite:
        op.execute("UPDATE messages SET body_text = '' WHERE body_text IS NULL")
        op.execute("UPDATE messages SET attachments = '[]' WHERE attachments IS NULL")
        op.alter_column("messages", "body_text", nullable=False)
        op.alter_column("messages", "attachments", nullable=False)
    op.drop_table("message_contents")
