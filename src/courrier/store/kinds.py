"""Tenant kinds: each tenant's catalogue is the defaults, its changes to them, and its own kinds.

A row of ``tenant_kinds`` either changes a default kind (``custom`` false:
``definition`` holds only the changed fields) or defines a kind of the
tenant's own (``custom`` true: the whole definition). ``enabled`` false
switches a kind off; ``templates`` are the tenant's edited templates,
``{"<locale>": {"subject", "text", "html"}}``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from courrier.domain.kind_json import kind_from_json, kind_json
from courrier.domain.kinds import Catalogue, NotificationKind
from courrier.errors import ValidationError
from courrier.store.schema import tenant_kinds
from courrier.store.statements import Prepared

#: template part names as the renderer knows them
PART_FILES = {"subject": "subject.txt", "text": "body.txt", "html": "body.html"}


@dataclass(frozen=True)
class TenantKind:
    """A kind as one tenant has it: the rule, whether it is on, and the tenant's templates."""

    kind: NotificationKind
    enabled: bool = True
    custom: bool = False
    templates: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    changed: tuple[str, ...] = ()  # fields the tenant changed (a default kind)


@dataclass(frozen=True)
class TenantCatalogue:
    """A tenant's kinds; :attr:`catalogue` holds the ones switched on."""

    kinds: tuple[TenantKind, ...]

    @cached_property
    def catalogue(self) -> Catalogue:
        return Catalogue(k.kind for k in self.kinds if k.enabled)

    def get(self, name: str) -> TenantKind | None:
        return next((k for k in self.kinds if k.kind.name == name), None)

    def template_overrides(self) -> dict[str, str]:
        """The tenant's templates under the renderer's names (``kind/locale/subject.txt``)."""
        found: dict[str, str] = {}
        for tk in self.kinds:
            for locale, parts in tk.templates.items():
                for part, source in parts.items():
                    if part in PART_FILES:
                        found[f"{tk.kind.template_kind}/{locale}/{PART_FILES[part]}"] = source
        return found


_ROWS = Prepared(
    lambda _dialect: (
        select(tenant_kinds)
        .where(tenant_kinds.c.tenant_id == bindparam("tenant"))
        .order_by(tenant_kinds.c.id)
    )
)


def _rows(conn: Connection, tenant_id: int) -> dict[str, dict[str, Any]]:
    return {
        row.name: dict(row._mapping) for row in conn.execute(_ROWS(conn), {"tenant": tenant_id})
    }


def apply_changes(kind: NotificationKind, changes: Mapping[str, Any]) -> NotificationKind:
    """A default kind with a tenant's changed fields (checked as a whole)."""
    return kind_from_json({**kind_json(kind), **changes, "name": kind.name})


#: catalogues built, by base catalogue and by the rows they were built from (the same rows
#: make the same catalogue: intake reads a tenant's rows every batch, and most have none)
_BUILT: weakref.WeakKeyDictionary[Catalogue, dict[str, TenantCatalogue]] = (
    weakref.WeakKeyDictionary()
)
_BUILT_LOCK = threading.Lock()
#: catalogues kept per base catalogue; all are dropped when there would be more
_BUILT_KEPT = 256


def tenant_catalogue(conn: Connection, tenant_id: int, base: Catalogue) -> TenantCatalogue:
    """The tenant's kinds: ``base`` with its changes, then its own kinds (one query).

    Built once for the same rows (and kept, shared: a :class:`TenantCatalogue` is
    never changed); any change to a row is a new key, so it is built anew.
    """
    rows = _rows(conn, tenant_id)
    key = repr(list(rows.values()))
    with _BUILT_LOCK:
        found = _BUILT.get(base, {}).get(key)
    if found is not None:
        return found
    built = _built(rows, base)
    with _BUILT_LOCK:
        kept = _BUILT.setdefault(base, {})
        if len(kept) >= _BUILT_KEPT:
            kept.clear()
        kept[key] = built
    return built


def _built(rows: dict[str, dict[str, Any]], base: Catalogue) -> TenantCatalogue:
    """The catalogue of a tenant's rows (changes to ``base`` and kinds of its own)."""
    rows = dict(rows)
    kinds: list[TenantKind] = []
    for kind in base:
        row = rows.pop(kind.name, None)
        if row is None:
            kinds.append(TenantKind(kind))
            continue
        changes = dict(row["definition"] or {})
        try:
            changed = apply_changes(kind, changes)
        except ValidationError:  # a change the defaults no longer accept: keep the default
            changed, changes = kind, {}
        kinds.append(
            TenantKind(changed, bool(row["enabled"]), False, row["templates"] or {}, tuple(changes))
        )
    for row in rows.values():
        if row["custom"]:
            custom = kind_from_json(row["definition"])
            kinds.append(TenantKind(custom, bool(row["enabled"]), True, row["templates"] or {}))
    return TenantCatalogue(tuple(kinds))


class Catalogues:
    """Each tenant's catalogue read once for one transaction (a claim checks it several times)."""

    def __init__(self, conn: Connection, base: Catalogue) -> None:
        self.conn = conn
        self.base = base
        self._read: dict[int, TenantCatalogue] = {}

    def of(self, tenant_id: int) -> TenantCatalogue:
        found = self._read.get(tenant_id)
        if found is None:
            found = self._read[tenant_id] = tenant_catalogue(self.conn, tenant_id, self.base)
        return found


def save_tenant_kind(
    conn: Connection,
    tenant_id: int,
    name: str,
    *,
    enabled: bool,
    custom: bool,
    definition: Mapping[str, Any],
    templates: Mapping[str, Mapping[str, str]],
    now: datetime,
) -> None:
    """Insert or replace the tenant's row for a kind."""
    values = {
        "enabled": enabled,
        "custom": custom,
        "definition": dict(definition),
        "templates": {k: dict(v) for k, v in templates.items()},
        "updated_at": now,
    }
    found = conn.execute(
        select(tenant_kinds.c.id)
        .where(tenant_kinds.c.tenant_id == tenant_id, tenant_kinds.c.name == name)
        .with_for_update()
    ).scalar_one_or_none()
    if found is None:
        conn.execute(insert(tenant_kinds).values(tenant_id=tenant_id, name=name, **values))
    else:
        conn.execute(update(tenant_kinds).where(tenant_kinds.c.id == found).values(**values))
