"""One-off messages' send keys with their idempotency key escaped.

``POST /v1/messages`` stored a one-off message under the send key
``direct:<idempotency key>``, the key as the client sent it. A key holding
``:`` could then name another message: ``renewal:follow-up:1`` was the first
follow-up of the one-off message ``renewal`` (its key is the original's plus
``:follow-up:1``), and a key of six parts the message an event planned for a
subject of type ``direct``; posting it answered that message as a replay and
sent nothing. The idempotency key is now escaped as every part of a planned
message's key is (``%`` as ``%25``, ``:`` as ``%3A``: see
``courrier.domain.planning.direct_send_key``).

This revision rewrites the stored keys of one-off messages, and of their
follow-ups, whose idempotency key held ``%`` or ``:``, so that posting such a
key again after the upgrade still answers the message it made (the others'
keys are unchanged). Keys move through a temporary value first: an old key
may be another message's new one (``a%3Ab`` was stored as is; ``a:b`` now
becomes that). The downgrade writes them back as they were.

Revision ID: 0010
Revises: 0009
"""

import hashlib
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREFIX = "direct:"
#: as courrier.domain.planning.MAX_SEND_KEY (the column's width) when this was written
MAX_SEND_KEY = 400

ONE_OFF = sa.text(
    "SELECT id, send_key, follow_up_index FROM messages WHERE kind = 'direct' ORDER BY id"
)
SET_KEY = sa.text("UPDATE messages SET send_key = :key WHERE id = :id")


def _bounded(key: str) -> str:
    if len(key) <= MAX_SEND_KEY:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: MAX_SEND_KEY - len(digest) - 2]}:#{digest}"


def _escaped(idempotency_key: str) -> str:
    return idempotency_key.replace("%", "%25").replace(":", "%3A")


def _unescaped(part: str) -> str:
    return part.replace("%3A", ":").replace("%25", "%")


def _rewritten(
    key: str, follow_up: int | None, change: Callable[[str], str], escaped: bool
) -> str | None:
    """``key`` with its idempotency key changed, or None when it is not in the expected form.

    A follow-up's key is its original's plus ``:follow-up:<n>``. Keys written
    before this revision were never cut short (an idempotency key has at most
    200 characters); an escaped one holds ``:#`` only when it was cut short
    and hashed, and cannot be written back (``escaped``: the downgrade).
    """
    suffix = "" if follow_up is None else f":follow-up:{follow_up}"
    if not key.startswith(PREFIX) or not key.endswith(suffix) or (escaped and ":#" in key):
        return None
    idempotency_key = key[len(PREFIX) : len(key) - len(suffix)]
    return _bounded(f"{PREFIX}{change(idempotency_key)}{suffix}")


def _rewrite(change: Callable[[str], str], *, escaped: bool) -> None:
    conn = op.get_bind()
    moves = []
    for message_id, key, follow_up in conn.execute(ONE_OFF):
        new = _rewritten(key, follow_up, change, escaped)
        if new is not None and new != key:
            moves.append({"id": message_id, "key": new})
    if not moves:
        return
    conn.execute(SET_KEY, [{"id": m["id"], "key": f"moving:{m['id']}"} for m in moves])
    conn.execute(SET_KEY, moves)


def upgrade() -> None:
    _rewrite(_escaped, escaped=False)


def downgrade() -> None:
    _rewrite(_unescaped, escaped=True)
