"""Statements built once per database dialect, then executed again and again.

SQLAlchemy builds a statement's expression tree, and a cache key for it,
every time code writes ``select(...)``: about 60 us for a small query here,
130 with an ``IN`` over a bound array.
A statement built once, with named parameters, costs about 20 to execute
again. Intake runs its queries once per batch, which for the API is once per
event posted, and the dispatcher once per batch, so the statements they run
every time are built once, by a :class:`Prepared`.

:func:`in_array` is the ``IN`` of such a statement: a list of values bound
as one parameter, ``json_each`` of a JSON array on SQLite and ``= ANY`` of an
array on PostgreSQL; :func:`array` makes the value to bind. :func:`keyed_rows`
is the same for a look-up by a unique key, which on PostgreSQL probes the
key's index once per value whatever the planner knows of the table.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ARRAY,
    Column,
    ColumnElement,
    Connection,
    Executable,
    FromClause,
    String,
    Table,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    true,
)

__all__ = ["CHUNK", "Prepared", "array", "chunks", "in_array", "keyed_rows"]

E = TypeVar("E", bound=Executable)
T = TypeVar("T")

#: a look-up by many values goes this many at a time: no statement, bound array or list of
#: parameters grows with the batch (SQLite allows 32,766 parameters a statement)
CHUNK = 500


class Prepared(Generic[E]):
    """A statement built by ``build(dialect name)`` on first use with each dialect, then kept."""

    def __init__(self, build: Callable[[str], E]) -> None:
        self._build = build
        self._built: dict[str, E] = {}
        self._lock = threading.Lock()

    def __call__(self, conn: Connection) -> E:
        name = conn.dialect.name
        statement = self._built.get(name)
        if statement is None:
            with self._lock:
                statement = self._built.get(name)
                if statement is None:
                    statement = self._built[name] = self._build(name)
        return statement


def in_array(dialect: str, column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """``column IN :name``, the values bound as one parameter (see :func:`array`)."""
    if dialect == "postgresql":
        # VARCHAR[] rather than VARCHAR(400)[]: a plan that PostgreSQL keeps for every value
        # (a prepared statement's generic plan) would check each element's length on every row
        element = String() if isinstance(column.type, String) else column.type
        return column == any_(bindparam(name, type_=ARRAY(element)))
    if dialect == "sqlite":
        values = func.json_each(bindparam(name, type_=String()))
        return column.in_(select(literal_column("value")).select_from(values))
    return column.in_(bindparam(name, expanding=True))


def keyed_rows(
    dialect: str,
    table: Table,
    key: Column[Any],
    name: str,
    *conditions: ColumnElement[bool],
    columns: Sequence[str] | None = None,
) -> tuple[FromClause, FromClause]:
    """The rows of ``table`` meeting ``conditions`` whose ``key`` is among the values bound as
    ``name`` (see :func:`array`): ``(what to select from, the rows' columns)``, those named in
    ``columns`` (default: all).

    ``conditions`` and ``key`` must pick at most one row per value (a unique
    constraint: a tenant's idempotency keys, its contacts' external ids). On PostgreSQL each value is looked up on its own (``unnest`` and a
    ``LATERAL`` sub-query of one row), which walks the key's index once per
    value. ``key = ANY(:name)`` does as well only once the planner has
    statistics of the table: before its first ``ANALYZE`` (a new database,
    a tenant's first bulk import), the plan it keeps for a prepared statement
    reads every row of the tenant and compares each with every value, 12 ms
    for 500 keys among 1,500 events against 1.3. Elsewhere, :func:`in_array`.

    Without statistics the planner takes any index that starts with the
    conditions' columns, so the key's unique index must be the only one that
    does: ``messages`` has several starting with the tenant, and its send
    keys stay with :func:`in_array` (tests/store/test_key_lookups.py checks
    the plans of the others).
    """
    wanted = [table.c[c] for c in columns] if columns else [table]
    if dialect != "postgresql":
        rows = select(*wanted).where(*conditions, in_array(dialect, key, name)).subquery()
        return rows, rows
    element = String() if isinstance(key.type, String) else key.type
    values = func.unnest(bindparam(name, type_=ARRAY(element))).table_valued("value")
    values = values.render_derived(name="keyed")
    one = select(*wanted).where(*conditions, key == values.c.value).limit(literal_column("1"))
    row = one.lateral()
    return values.join(row, true()), row


def array(conn: Connection, values: Sequence[Any]) -> Any:
    """``values`` (strings or integers) as bound for :func:`in_array` on this connection."""
    if conn.dialect.name == "sqlite":
        return json.dumps(list(values))
    return list(values)


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``values`` in slices of at most ``size``, in order (none when empty)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
