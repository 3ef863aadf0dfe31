"""The queue's indexes: one per waiting status, holding only its messages.

0001's ``ix_messages_claim`` (status, priority, due_at) held every message,
and a claim asking for the planned and due messages whose time had come, or
the expired leases, had to read all of them, future reminders included,
then sort those due: a claim took longer the more was waiting. Three
partial indexes replace it (see ``schema.WAITING_INDEXES``), and a plain
index on ``status`` keeps the count per status of ``/metrics``.

The indexes of ``follow_up_of`` and ``sent_at`` then hold only the rows that
have one: on PostgreSQL every claim and record of a message writes a new
entry in each index of the table, and neither column is set when a message
is planned or claimed.

On PostgreSQL the indexes are built in the migration's transaction, not
``CONCURRENTLY``: writes to ``messages`` wait until it ends, which on a
table of millions of messages takes a while (docs/operations.md: upgrading).

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: name -> (status, columns), as in the schema when this revision was written
WAITING_INDEXES = {
    "ix_messages_due": ("due", ("channel", sa.text("priority DESC"), "due_at", "id")),
    "ix_messages_planned": ("planned", ("channel", "due_at", "id")),
    "ix_messages_leased": ("sending", ("channel", "lease_until", "id")),
}


#: indexes of a column most rows leave empty, from then on holding only the rows that fill it
FILLED_ONLY = ("follow_up_of", "sent_at")


def upgrade() -> None:
    for column in FILLED_ONLY:
        op.drop_index(f"ix_messages_{column}", table_name="messages")
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            f"ix_messages_{column}", "messages", [column], sqlite_where=where, postgresql_where=where
        )
    op.drop_index("ix_messages_claim", table_name="messages")
    op.create_index("ix_messages_status", "messages", ["status"])
    for name, (status, columns) in WAITING_INDEXES.items():
        where = sa.text(f"status = '{status}'")
        op.create_index(name, "messages", list(columns), sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for name in WAITING_INDEXES:
        op.drop_index(name, table_name="messages")
    op.drop_index("ix_messages_status", table_name="messages")
    op.create_index("ix_messages_claim", "messages", ["status", "priority", "due_at"])
    for column in FILLED_ONLY:
        op.drop_index(f"ix_messages_{column}", table_name="messages")
        op.create_index(f"ix_messages_{column}", "messages", [column])
