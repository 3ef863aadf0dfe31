"""Rate limits per tenant and per recipient domain, shared by every worker through the database.

Each limit is counted per tenant: a venue's burst fills its own minute and
nobody else's, so one venue cannot get the whole service throttled (or its
shared IP blocklisted by a mailbox provider) while the others' mail waits.
A message is counted when it was sent in the last 60 seconds
(``messages.sent_at``, the same rows for every worker) or passed earlier in
this batch. A message counts once against its tenant's limit and once
against each recipient domain it goes to, Cc and Bcc included: a mail to
one address at a provider with a copy to another spends one of that
provider's minute, not two. What is over a limit goes back to the queue, due when the
window next has room: the k-th message over a limit of L waits for the
(k mod L)-th oldest send of the window to leave it, plus one minute per full
round of L, so a burst drains at the limit's pace without being claimed
again and again before its turn. k counts the messages earlier batches put
back (they wait with the limit as their reason), read only when a batch
has something to defer.

With no limit set (the default) nothing is queried at all: whether a tenant
has a limit of its own is remembered for ``TENANT_CACHE_SECONDS``, so a
changed limit applies within that time.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Text, and_, cast, func, or_, select
from sqlalchemy.engine import Engine

from courrier.domain.status import MessageStatus
from courrier.settings import Settings
from courrier.store.queue import ClaimedMessage
from courrier.store.schema import messages, tenants

__all__ = ["Deferral", "rate_limited"]

WINDOW = timedelta(seconds=60)
#: how deferral reasons start; messages waiting with these are counted by later batches
TENANT_REASON = "tenant rate limit: "
DOMAIN_REASON = "domain rate limit: "
TENANT_CACHE_SECONDS = 30.0
#: (tenant limit, domain limit) of a tenant: None when the tenant has none of its own
Own = tuple[int | None, int | None]
#: a limit: (tenant, None) for the tenant's, (tenant, domain) for one recipient domain
Key = tuple[int, str | None]

_cache: weakref.WeakKeyDictionary[Engine, dict[int, tuple[float, Own]]] = (
    weakref.WeakKeyDictionary()
)
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Deferral:
    """A claimed message held back by a limit: back in the queue until ``due_at``."""

    message_id: int
    due_at: datetime
    reason: str


def rate_limited(
    conn: Connection, claimed: Sequence[ClaimedMessage], now: datetime, settings: Settings
) -> list[Deferral]:
    """The claimed messages over their tenant's or recipient domain's limit this minute."""
    if not claimed:
        return []
    own = _own_limits(conn, {int(m.row["tenant_id"]) for m in claimed})
    per_tenant = {
        t: (_pick(a, settings.rate_per_minute), _pick(b, settings.domain_rate_per_minute))
        for t, (a, b) in own.items()
    }
    if not any(a or b for a, b in per_tenant.values()):
        return []
    windows = _Windows(per_tenant, now)
    windows.load(conn, claimed)
    held = [(m, full) for m, full in ((m, windows.admit(m)) for m in claimed) if full]
    if held:
        windows.load_waiting(conn, {key for _, full in held for key in full})
    return [windows.defer(message, full) for message, full in held]


def _pick(own: int | None, default: int) -> int:
    return default if own is None else own


def _domain(address: str | None) -> str:
    return (address or "").rpartition("@")[2].lower()


def _domains(address: str | None, cc: Any, bcc: Any) -> frozenset[str]:
    """The recipient domains of a message: its address's, its Cc's and its Bcc's."""
    return frozenset(_domain(a) for a in (address, *(cc or ()), *(bcc or ())) if a)


def _copied(column: Any) -> ColumnElement[bool]:
    """Rows whose Cc or Bcc list holds something (SQL NULL and JSON null both mean none)."""
    return func.coalesce(cast(column, Text), "null") != "null"


def _own_limits(conn: Connection, tenant_ids: set[int]) -> dict[int, Own]:
    """Each tenant's own limits, from the cache when fresh, else in one query."""
    clock = time.monotonic()
    with _cache_lock:
        known = _cache.setdefault(conn.engine, {})
        found = {t: known[t][1] for t in tenant_ids if t in known and known[t][0] > clock}
    missing = tenant_ids - found.keys()
    if missing:
        rows = conn.execute(
            select(tenants.c.id, tenants.c.rate_per_minute, tenants.c.domain_rate_per_minute).where(
                tenants.c.id.in_(sorted(missing))
            )
        ).all()
        fetched: dict[int, Own] = {row.id: (row[1], row[2]) for row in rows}
        fetched.update({t: (None, None) for t in missing - fetched.keys()})
        with _cache_lock:
            for tenant_id, limits in fetched.items():
                known[tenant_id] = (clock + TENANT_CACHE_SECONDS, limits)
        found.update(fetched)
    return found


class _Windows:
    """The last minute's send times per tenant and per (tenant, domain), and who passes now."""

    def __init__(self, limits: dict[int, tuple[int, int]], now: datetime) -> None:
        self.limits = limits
        self.now = now
        self.sent: dict[Key, list[datetime]] = {}
        self.deferred: dict[Key, int] = {}

    def load(self, conn: Connection, claimed: Sequence[ClaimedMessage]) -> None:
        """Read the sends of the window that count against the batch's limits (one query)."""
        whole = sorted(t for t, (rate, _) in self.limits.items() if rate)
        domains: dict[int, set[str]] = {}
        for message in claimed:
            tenant_id = int(message.row["tenant_id"])
            if self.limits[tenant_id][1] and tenant_id not in whole:
                domains.setdefault(tenant_id, set()).update(_message_domains(message))
        wanted: list[ColumnElement[bool]] = [messages.c.tenant_id.in_(whole)] if whole else []
        address = func.lower(messages.c.address)
        for tenant_id, names in domains.items():
            matches: list[ColumnElement[bool]] = [
                address.like(f"%@{_escaped(name)}", escape="\\") for name in names
            ]
            # copies are rare: read them all and let their domains be counted here
            matches += [_copied(messages.c.cc_addrs), _copied(messages.c.bcc_addrs)]
            wanted.append(and_(messages.c.tenant_id == tenant_id, or_(*matches)))
        rows = conn.execute(
            select(
                messages.c.tenant_id,
                messages.c.address,
                messages.c.cc_addrs,
                messages.c.bcc_addrs,
                messages.c.sent_at,
            )
            .where(messages.c.sent_at > self.now - WINDOW, or_(*wanted))
            .order_by(messages.c.sent_at)
        ).all()
        for row in rows:
            found = _domains(row.address, row.cc_addrs, row.bcc_addrs)
            self._note(int(row.tenant_id), found, row.sent_at)

    def _note(self, tenant_id: int, domains: frozenset[str], at: datetime) -> None:
        for key in self._keys(tenant_id, domains):
            self.sent.setdefault(key, []).append(at)

    def _keys(self, tenant_id: int, domains: frozenset[str]) -> Iterable[Key]:
        rate, domain_rate = self.limits[tenant_id]
        if rate:
            yield tenant_id, None
        if domain_rate:
            for domain in sorted(domains):
                yield tenant_id, domain

    def admit(self, message: ClaimedMessage) -> list[Key]:
        """Count the message in if every limit has room (``[]``); else the limits that are full."""
        tenant_id = int(message.row["tenant_id"])
        domains = _message_domains(message)
        keys = list(self._keys(tenant_id, domains))
        full = [key for key in keys if len(self.sent.get(key, [])) >= self._limit(key)]
        if not full:
            self._note(tenant_id, domains, self.now)
        return full

    def load_waiting(self, conn: Connection, full: set[Key]) -> None:
        """How many messages earlier batches already put back for each full limit (one query).

        Deferred messages wait in the queue with the limit as their reason;
        counting them puts this batch's excess after theirs, so a burst
        spread over many batches is not claimed again every minute.
        """
        rows = conn.execute(
            select(messages.c.tenant_id, messages.c.address, messages.c.status_reason).where(
                messages.c.tenant_id.in_(sorted({tenant_id for tenant_id, _ in full})),
                messages.c.status == MessageStatus.DUE.value,
                messages.c.due_at > self.now,
                messages.c.status_reason.like("%rate limit: %"),
            )
        ).all()
        for row in rows:
            keys: list[Key] = []
            for part in str(row.status_reason).split("; "):
                if part.startswith(TENANT_REASON):
                    keys.append((int(row.tenant_id), None))
                elif part.startswith(DOMAIN_REASON):  # "... a minute to <domain>"
                    keys.append((int(row.tenant_id), part.rpartition(" to ")[2]))
            for key in keys:
                if key in full:
                    self.deferred[key] = self.deferred.get(key, 0) + 1

    def defer(self, message: ClaimedMessage, full: list[Key]) -> Deferral:
        """The deferral of a message over the ``full`` limits: due when all have room."""
        due_at = max(self._next_room(key) for key in full)
        for key in full:
            self.deferred[key] = self.deferred.get(key, 0) + 1
        return Deferral(message.id, due_at, "; ".join(self._reason(key) for key in full))

    def _limit(self, key: Key) -> int:
        rate, domain_rate = self.limits[key[0]]
        return rate if key[1] is None else domain_rate

    def _next_room(self, key: Key) -> datetime:
        """When the next message over this limit may go: see the module's docstring."""
        limit, times = self._limit(key), self.sent[key]
        k = self.deferred.get(key, 0)
        return times[len(times) - limit + k % limit] + WINDOW * (1 + k // limit)

    def _reason(self, key: Key) -> str:
        limit = self._limit(key)
        if key[1] is None:
            return f"{TENANT_REASON}{limit} messages a minute"
        return f"{DOMAIN_REASON}{limit} messages a minute to {key[1]}"


def _message_domains(message: ClaimedMessage) -> frozenset[str]:
    row = message.row
    return _domains(row["address"], row.get("cc_addrs"), row.get("bcc_addrs"))


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
