"""On PostgreSQL, a message's bodies compressed with LZ4 and kept in its row of ``message_contents``.

A booking confirmation's bodies (text, HTML and the ``.ics``) come to about
6 KiB. By default PostgreSQL compresses such values with its own pglz and,
as they still exceed its 2 KiB threshold, moves them into the table's TOAST
relation: one more heap row and one more index entry per value. Storing the
message's contents was then a fifth of intake's time in the server (54 us a
message of 192, measured with pg_stat_statements), and reading them back to
send a tenth of the dispatcher's (17 of 88 us).

``STORAGE MAIN`` keeps the compressed values in the row unless the row
cannot fit a page otherwise, and LZ4 (PostgreSQL 14 and later, when the
server was built with it) compresses several times faster than pglz:
storing the contents went to 30 us, reading them to 12. Rows written before
keep their old form; both are read alike. SQLite has no such settings.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("body_text", "body_html", "attachments")

#: whether this server can compress with LZ4 (the setting exists from PostgreSQL 14)
LZ4 = (
    "SELECT count(*) FROM pg_settings"
    " WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    lz4 = bool(bind.execute(sa.text(LZ4)).scalar())
    changes = [f"ALTER COLUMN {c} SET STORAGE MAIN" for c in COLUMNS]
    if lz4:
        changes += [f"ALTER COLUMN {c} SET COMPRESSION lz4" for c in COLUMNS]
    op.execute(f"ALTER TABLE message_contents {', '.join(changes)}")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    changes = [f"ALTER COLUMN {c} SET STORAGE EXTENDED" for c in COLUMNS]
    if bind.execute(sa.text(LZ4)).scalar():
        changes += [f"ALTER COLUMN {c} SET COMPRESSION DEFAULT" for c in COLUMNS]
    op.execute(f"ALTER TABLE message_contents {', '.join(changes)}")
