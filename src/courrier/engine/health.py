"""Address health: counting what fails, blocking what keeps failing, not sending to it.

A permanent refusal at SMTP time (a 5xx reply) says the address is bad; a
deferral (4xx, a timeout) or a final give-up after retries says nothing
about the address, so only the first is counted. A message whose address is
blocked is suppressed at claim time with a reason that names the count and
the last error, and whether another channel of the contact could carry it
(:func:`fallback_channel`, pure, so the rule is tested on its own).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from courrier.domain.kinds import DEFAULT_CATALOGUE
from courrier.domain.status import MessageStatus
from courrier.engine.results import SendResult
from courrier.engine.sendcheck import Verdict
from courrier.store import health as store
from courrier.store.kinds import Catalogues, TenantCatalogue
from courrier.store.queue import ClaimedMessage
from courrier.store.schema import contacts

__all__ = [
    "AVAILABLE_CHANNELS",
    "blocked_verdicts",
    "enhanced_status",
    "fallback_channel",
    "note_send_results",
]

#: the channels this installation can send on
AVAILABLE_CHANNELS: frozenset[str] = frozenset({"email"})

#: kinds never sent anywhere but the address they were asked for
NO_FALLBACK_KINDS = frozenset({"member.password_reset"})

ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


def enhanced_status(reply: str | None) -> str | None:
    """The RFC 3463 code in a server's reply (``5.1.1`` in ``5.1.1 User unknown``), or None."""
    found = ENHANCED.search(reply or "")
    return found.group(1) if found else None


def fallback_channel(
    kind: str,
    kind_channels: Sequence[str],
    blocked_channel: str,
    contact_addresses: Mapping[str, str | None],
    available: Collection[str],
) -> tuple[str | None, str]:
    """The channel to use instead of a blocked one, and why (or why none).

    Candidates are the kind's channels in order, other than the blocked one;
    the first the installation has and the contact has an address for wins.
    """
    if kind in NO_FALLBACK_KINDS:
        return None, f"{kind} is never sent by another channel"
    others = [c for c in kind_channels if c != blocked_channel]
    if not others:
        return None, "the kind allows no other channel"
    why: list[str] = []
    for channel in others:
        if channel not in available:
            why.append(f"{channel} is not available in this installation")
        elif not contact_addresses.get(channel):
            why.append(f"the contact has no {_address_word(channel)}")
        else:
            return channel, f"{channel} to {contact_addresses[channel]}"
    return None, "; ".join(why)


def _address_word(channel: str) -> str:
    return {"sms": "phone number", "email": "email address"}.get(channel, f"{channel} address")


def note_send_results(conn: Connection, results: Sequence[SendResult], now: datetime) -> None:
    """Count permanent SMTP refusals (5xx) against their address; block past the threshold.

    Those of a mail refused outright count against its main address; those
    of single recipients of a mail the server took for the others (a bad Cc
    or Bcc, or the To beside an accepted Cc) against each such recipient.
    """
    errors = [
        _smtp_error(r, str(r.message.row["address"]), r.code, r.reply)
        for r in results
        if r.kind == "permanent" and _is_5xx(r.code)
    ]
    errors += [
        _smtp_error(r, refused.address, refused.code, refused.reply)
        for r in results
        if r.kind == "sent"
        for refused in r.refused
        if _is_5xx(refused.code)
    ]
    store.record_errors(conn, errors, now)


def _is_5xx(code: int | None) -> bool:
    return code is not None and 500 <= code < 600


def _smtp_error(
    result: SendResult, address: str, code: int | None, reply: str
) -> store.AddressError:
    return store.AddressError(
        tenant_id=int(result.message.row["tenant_id"]),
        address=address,
        source="smtp",
        code=code,
        status=enhanced_status(reply),
        text=reply,
        message_id=result.message.id,
    )


def blocked_verdicts(
    conn: Connection,
    claimed: Sequence[ClaimedMessage],
    now: datetime,
    catalogues: Catalogues | None = None,
) -> list[Verdict]:
    """The claimed messages whose address is blocked: suppressed, with the reason (and fallback).

    ``catalogues`` shares the tenants' catalogues read once in the claim's transaction.
    """
    keys = {
        m.id: (int(m.row["tenant_id"]), store.normalise(str(m.row["address"]))) for m in claimed
    }
    blocked = store.blocked_rows(conn, keys.values())
    if not blocked:
        return []
    hit = [m for m in claimed if keys[m.id] in blocked]
    phones = _phones(conn, [m.row.get("contact_id") for m in hit])
    catalogues = catalogues or Catalogues(conn, DEFAULT_CATALOGUE)
    verdicts = []
    for message in hit:
        health = blocked[keys[message.id]]
        reason = _reason(message.row, health, catalogues.of(keys[message.id][0]), phones)
        verdicts.append(Verdict(message.id, MessageStatus.SUPPRESSED, reason))
    return verdicts


def _phones(conn: Connection, contact_ids: Sequence[Any]) -> dict[int, str | None]:
    wanted = sorted({int(i) for i in contact_ids if i is not None})
    if not wanted:
        return {}
    query = select(contacts.c.id, contacts.c.phone).where(contacts.c.id.in_(wanted))
    return {int(i): phone for i, phone in conn.execute(query)}


def _reason(
    row: Mapping[str, Any],
    health: Mapping[str, Any],
    catalogue: TenantCatalogue,
    phones: Mapping[int, str | None],
) -> str:
    found = catalogue.get(str(row["kind"]))
    channels = found.kind.channels if found else (str(row["channel"]),)
    contact_id = row.get("contact_id")
    addresses = {
        str(row["channel"]): str(row["address"]),
        "sms": phones.get(int(contact_id)) if contact_id is not None else None,
    }
    channel, why = fallback_channel(
        str(row["kind"]), channels, str(row["channel"]), addresses, AVAILABLE_CHANNELS
    )
    blocked = (
        f"{row['address']} is blocked after {health['error_count']} errors"
        f" (last: {health['last_error'] or 'unknown'})"
    )
    if channel is None:
        return f"{blocked}; no fallback: {why}"
    return f"{blocked}; fallback: {why}"
