"""The send-time check: each claimed message, held once more against its subject's current state.

Intake re-plans a subject's messages on every event, but an event may come
between the claim and the send, or a message may have been planned by an
older rule. So, in the claim's transaction, every subject-bound message is
checked against the subject as it stands now: a kind the tenant switched
off, a condition that no longer holds (a booking paid, cancelled), a
reminder for a date the subject no longer has, or a reminder that would
arrive after the date it announces (a queue held up by an outage, or a
message sent again by staff), and the message is withdrawn, cancelled with
the reason, instead of sent. A notice due at the date itself (offset
zero, such as a check-in notice) may still go a little late.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from courrier.domain.conditions import failed_condition
from courrier.domain.kinds import DEFAULT_CATALOGUE, Catalogue, NotificationKind
from courrier.domain.planning import anchor_date, send_key_part
from courrier.domain.status import MessageStatus
from courrier.store.kinds import Catalogues
from courrier.store.preferences import switched_off_rows
from courrier.store.queue import ClaimedMessage
from courrier.store.schema import subjects
from courrier.store.statements import Prepared, array, chunks, in_array

__all__ = ["Verdict", "stale_messages"]

#: a send key too long for its column ends with the SHA-256 of the whole (its parts unreadable)
HASHED = re.compile(r":#[0-9a-f]{64}$")


@dataclass(frozen=True)
class Verdict:
    """A claimed message that must not leave: its final status and why."""

    message_id: int
    status: MessageStatus
    reason: str


#: subjects' states among some ids: read for every claimed batch of subject-bound messages
_STATES = Prepared(
    lambda dialect: select(subjects.c.id, subjects.c.state).where(
        in_array(dialect, subjects.c.id, "ids")
    )
)


def _states(conn: Connection, subject_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    wanted = sorted(set(subject_ids))
    for part in chunks(wanted):
        params = {"ids": array(conn, part)}
        found.update((i, dict(state)) for i, state in conn.execute(_STATES(conn), params))
    return found


def stale_reason(
    kind: NotificationKind,
    enabled: bool,
    message: Mapping[str, Any],
    state: Mapping[str, Any],
    now: datetime,
) -> str | None:
    """Why this message no longer fits its subject's state at ``now``, or None when it may go."""
    if not enabled:
        return f"{kind.name} is switched off for this tenant"
    failed = failed_condition(kind.conditions, state, subject_only=True)
    if failed is not None:
        return f"at send time: {failed}"
    if kind.timing.anchored:
        date = anchor_date(kind.timing, state)
        if date is None:
            return f"at send time: the subject has no {kind.timing.date_field} any more"
        occurrence = re.escape(":" + send_key_part(date.astimezone(UTC).isoformat()))
        key = str(message["send_key"])
        if not HASHED.search(key) and not re.search(occurrence + r"(@v\d+)?$", key):
            return f"at send time: {kind.timing.date_field} is now {date.isoformat()}"
        ahead = kind.timing.offset > timedelta(0) or kind.timing.days > 0
        if ahead and date <= now:
            return f"at send time: {kind.timing.date_field} {date.isoformat()} has passed"
    return None


def stale_messages(
    conn: Connection,
    claimed: Sequence[ClaimedMessage],
    *,
    now: datetime,
    base: Catalogue | None = None,
    catalogues: Catalogues | None = None,
) -> list[Verdict]:
    """The claimed messages that must not be sent, each with its reason (a few queries).

    Those the subject no longer wants are cancelled; of the others, those the
    recipient's preferences now stop are suppressed. ``catalogues`` shares
    the tenants' catalogues read once in the claim's transaction.
    """
    catalogues = catalogues or Catalogues(conn, base or DEFAULT_CATALOGUE)
    verdicts = _subject_verdicts(conn, claimed, catalogues, now)
    withdrawn = {v.message_id for v in verdicts}
    rows = [m.row for m in claimed if m.id not in withdrawn]
    stopped = switched_off_rows(conn, rows, catalogues.base, catalogues)
    verdicts += [Verdict(i, MessageStatus.SUPPRESSED, reason) for i, reason in stopped]
    return verdicts


def _subject_verdicts(
    conn: Connection, claimed: Sequence[ClaimedMessage], catalogues: Catalogues, now: datetime
) -> list[Verdict]:
    checked = []
    reads: dict[int, bool] = {}  # by id(kind): a batch holds few kinds
    for message in claimed:
        if message.row.get("subject_id") is None:
            continue
        found = catalogues.of(int(message.row["tenant_id"])).get(message.row["kind"])
        if found is None:
            continue  # a kind Courrier no longer knows: nothing to check against
        if found.enabled:
            needs = reads.get(id(found.kind))
            if needs is None:
                needs = reads[id(found.kind)] = _reads_state(found.kind)
            if not needs:
                continue  # on, and asking nothing of the subject: it may go whatever its state
        checked.append((message, found))
    if not checked:
        return []
    states = _states(conn, [message.row["subject_id"] for message, _ in checked])
    verdicts: list[Verdict] = []
    for message, found in checked:
        state = states.get(message.row["subject_id"])
        if state is None:
            continue  # a subject Courrier no longer knows: nothing to check against
        reason = stale_reason(found.kind, found.enabled, message.row, state, now)
        if reason is not None:
            verdicts.append(Verdict(message.id, MessageStatus.CANCELLED, reason))
    return verdicts


def _reads_state(kind: NotificationKind) -> bool:
    """Whether :func:`stale_reason` looks at the subject's state for an enabled ``kind``.

    Most kinds (a confirmation) have no condition on the subject and no date
    to keep to; reading and decoding their subjects' states was two thirds
    of the check.
    """
    return kind.timing.anchored or any(not c.on_event for c in kind.conditions)
