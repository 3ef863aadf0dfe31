"""Adding many rows at once: ``COPY`` on PostgreSQL, the driver's executemany on SQLite.

psycopg's executemany binds and sends every row as a statement of its own;
``COPY ... FROM STDIN`` streams them, for about half the client CPU a row,
in PostgreSQL's binary format (no text to escape, print and parse back).
A COPY costs a few round trips whatever its size, so a few rows (one
event's, posted alone) go as one multi-row INSERT instead. On SQLite,
SQLAlchemy's executemany builds a parameter dictionary per row before the
driver sees it, about as costly as the insert itself; the rows go to the
driver as tuples instead. Either way the values still go through
their columns' types (UTC instants, JSON), so the conversions stay where
the schema declares them, and a column a row leaves out takes its
Python-side default, as in an INSERT.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any, cast

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import (
    Column,
    Connection,
    Table,
    insert,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.schema import ColumnDefault

__all__ = [
    "JSONText",
    "insert_numbered_rows",
    "insert_rows",
    "json_object",
    "json_text",
]


class JSONText(str):
    """A JSON column's value already encoded, as the column would encode it.

    :func:`insert_rows` writes it as it is. For a value stored more than
    once (a subject's state goes into the subject, its version and the
    event), so it is encoded once.
    """


def _serializer(conn: Connection) -> Callable[[Any], str]:
    """The dialect's JSON encoder (SQLAlchemy's default: ``json.dumps``)."""
    return getattr(conn.dialect, "_json_serializer", None) or json.dumps


def json_text(conn: Connection, value: Any) -> JSONText:
    """``value`` encoded for a JSON column of this connection."""
    return JSONText(_serializer(conn)(value))


def json_object(conn: Connection, members: Mapping[str, Any]) -> JSONText:
    """``members`` as one JSON object, those already :class:`JSONText` not encoded again.

    Byte for byte what ``json.dumps(members)`` writes; with another
    serializer, the object is decoded and encoded whole.
    """
    serializer = _serializer(conn)
    if serializer is not json.dumps:
        plain = {k: json.loads(v) if isinstance(v, JSONText) else v for k, v in members.items()}
        return JSONText(serializer(plain))
    inner = ", ".join(
        f"{_json_key(k)}: {v if isinstance(v, JSONText) else json.dumps(v)}"
        for k, v in members.items()
    )
    return JSONText("{" + inner + "}")


@lru_cache(maxsize=64)
def _json_key(key: str) -> str:
    """A member name as JSON: the few names callers use (``subject``, ``payload``), encoded once."""
    return json.dumps(key)


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add ``rows`` (the same keys in each) to ``table`` in one round trip."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        if len(rows) > FEW:
            _copy_rows(conn, table, rows)
        else:
            _insert_few(conn, table, rows)
    elif conn.dialect.name == "sqlite" and conn.dialect.paramstyle == "qmark":
        _executemany_rows(conn, table, rows)
    else:
        decoded = [
            {k: json.loads(v) if isinstance(v, JSONText) else v for k, v in row.items()}
            for row in rows
        ]
        conn.execute(insert(table), decoded)


def insert_numbered_rows(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> Sequence[int] | None:
    """Add ``rows`` as :func:`insert_rows` does, and give back their new ids in row order;
    None when they cannot be known so (the caller then looks them up).

    On PostgreSQL the ids are drawn from the table's sequence first, in one
    round trip, and stored with the rows; one row alone is inserted with
    ``RETURNING id``. A look-up after the insert would cost as much, and on a
    table not analysed yet its plan may read every row of the tenant.

    SQLite numbers a new row one past the table's largest id, and intake's
    transaction holds the write lock (``BEGIN IMMEDIATE``), so one
    executemany's rows are numbered in a run ending at
    ``last_insert_rowid()``. The largest id before the insert proves it:
    if the run does not start right after it (an AUTOINCREMENT table past
    deleted rows, the largest possible id reached), the answer is None.
    One row alone is one execute, whose rowid the driver gives back.
    """
    if rows and conn.dialect.name == "postgresql" and "id" not in rows[0]:
        if len(rows) == 1:
            return _insert_few(conn, table, rows, returning_id=True)
        ids = _new_ids(conn, table, len(rows))
        insert_rows(conn, table, [{"id": i, **row} for i, row in zip(ids, rows, strict=True)])
        return ids
    if not rows or conn.dialect.name != "sqlite" or conn.dialect.paramstyle != "qmark":
        insert_rows(conn, table, rows)
        return None
    if len(rows) == 1 and "id" not in rows[0]:  # one event's rows, posted alone
        new_id = _executemany_rows(conn, table, rows)
        return None if new_id is None else [new_id]
    name = conn.dialect.identifier_preparer.quote(table.name)
    # the table's name from its definition, never from data
    before = conn.exec_driver_sql(f"SELECT max(id) FROM {name}").scalar()  # noqa: S608
    _executemany_rows(conn, table, rows)
    last = conn.exec_driver_sql("SELECT last_insert_rowid()").scalar()
    first = (before or 0) + 1
    if "id" in rows[0] or last != first + len(rows) - 1:
        return None
    return range(first, last + 1)


def _python_default(column: Column[Any]) -> Any:
    default = column.default
    if not isinstance(default, ColumnDefault):
        raise ValueError(f"{column} has no Python-side default; give it in every row")
    return default.arg(None) if default.is_callable else default.arg


def _columns(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> tuple[tuple[str, ...], dict[str, Any], tuple[Any, ...]]:
    """The columns given (the first row's keys), those defaulted, and each one's converter.

    Which columns and converters is worked out once per table, dialect and
    keys given (:func:`_layout`); the defaults are taken anew at every call
    (a callable one gives a new value each time).
    """
    given, defaulted, converters = _layout(conn.dialect, table, tuple(rows[0]))
    return given, {c.name: _python_default(c) for c in defaulted}, converters


@lru_cache(maxsize=256)
def _layout(
    dialect: Dialect, table: Table, given: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[Column[Any], ...], tuple[Any, ...]]:
    """The columns given, the columns defaulted, and each one's converter (given first).

    A few tables and key sets recur, and asking each column's type for its
    dialect's converter at every insert took 27 us for a message row's 28
    columns (1.7 kept here): one event posted alone writes seven tables.
    """
    defaulted = tuple(c for c in table.c if c.name not in given and c.default is not None)
    columns = [*given, *(c.name for c in defaulted)]
    converters = tuple(
        table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns
    )
    return given, defaulted, converters


def _executemany_rows(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> int | None:
    """The rows as one executemany; one row alone as one execute, and its new rowid."""
    dialect = conn.dialect
    given, defaulted, converters = _columns(conn, table, rows)
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in [*given, *defaulted])
    marks = ", ".join("?" * len(converters))
    # names from the table's definition, never from data: the values are all bound
    statement = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"  # noqa: S608
    params = list(_converted(rows, given, [*defaulted.values()], converters, none_too=True))
    # through SQLAlchemy's cursor hooks, so statement listeners and error wrapping still apply
    if len(params) == 1:  # the driver gives the rowid of an execute, not of an executemany
        return conn.exec_driver_sql(statement, params[0]).lastrowid
    conn.exec_driver_sql(statement, params)
    return None


def _converted(
    rows: Sequence[Mapping[str, Any]],
    given: Sequence[str],
    fixed: list[Any],
    converters: Sequence[Any],
    *,
    none_too: bool,
    encoded: Callable[[JSONText], Any] = str,
) -> Iterator[tuple[Any, ...]]:
    """Each row's values through their columns' converters, as a tuple.

    A batch's rows share many values (the batch's ``now`` in every
    timestamp column): a value that is the very object converted for the
    row before takes that result again. ``none_too``: None goes through
    the converter as well (SQLAlchemy's way: a JSON column writes it as
    ``null``); else it stays None (SQL NULL). A value encoded already
    (:class:`JSONText`) becomes ``encoded(value)``: its plain text by default.
    """
    convert = [(i, f) for i, f in enumerate(converters) if f is not None]
    last_in: list[Any] = [None] * len(converters)
    last_out: list[Any] = [None] * len(converters)
    if none_too:  # "None seen before" must not skip the converter of None itself
        sentinel = object()
        last_in = [sentinel] * len(converters)
    take = _values_of(given)
    for row in rows:
        values = [*take(row), *fixed]
        for i, f in convert:
            value = values[i]
            if isinstance(value, JSONText):  # encoded already
                values[i] = encoded(value)
            elif value is last_in[i]:
                values[i] = last_out[i]
            elif value is not None or none_too:
                last_in[i], last_out[i] = value, f(value)
                values[i] = last_out[i]
        yield tuple(values)


def _values_of(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A row's values for ``names``, as a tuple: ``itemgetter``, a third faster than a generator."""
    if len(names) > 1:
        return itemgetter(*names)
    return lambda row: tuple(row[name] for name in names)


#: on PostgreSQL, rows up to this many go as an INSERT (one round trip), more through COPY
#: (a statement, the data and its end: the data of many rows is worth it, of one row not)
FEW = 8


def _new_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """``count`` new ids from the sequence of ``table``'s ``id`` column, ascending.

    The sequence is looked up once, in a sub-query kept apart (``OFFSET 0``):
    ``nextval(pg_get_serial_sequence(...))`` looked it up again for every id,
    2.5 us each against 0.3.
    """
    drawn = conn.exec_driver_sql(
        "SELECT nextval(s.seq) FROM"
        " (SELECT pg_get_serial_sequence(%s, 'id')::regclass AS seq OFFSET 0) AS s,"
        " generate_series(1, %s)",
        (table.name, count),
    )
    return sorted(drawn.scalars())


def _insert_few(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    returning_id: bool = False,
) -> list[int]:
    """A few rows as one INSERT of their converted values, NULL for None as COPY writes it;
    with ``returning_id`` (for one row: a multi-row INSERT does not promise the order of
    what it returns), the new ids."""
    dialect = conn.dialect
    given, defaulted, converters = _columns(conn, table, rows)
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in [*given, *defaulted])
    row_marks = "(" + ", ".join(["%s"] * len(converters)) + ")"
    # names from the table's definition, never from data: the values are all bound
    statement = f"INSERT INTO {quote(table.name)} ({names}) VALUES "  # noqa: S608
    statement += ", ".join([row_marks] * len(rows))
    values = [
        value
        for row in _converted(rows, given, [*defaulted.values()], converters, none_too=False)
        for value in row
    ]
    if returning_id:
        return list(conn.exec_driver_sql(statement + " RETURNING id", tuple(values)).scalars())
    conn.exec_driver_sql(statement, tuple(values))
    return []


def _copy_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """The rows through ``COPY``, in PostgreSQL's binary format when every column's type has
    one here (:func:`_binary_types`), else in its text format."""
    dialect = conn.dialect
    given, defaulted, converters = _columns(conn, table, rows)
    columns = [*given, *defaulted]
    types = _binary_types(dialect, table, tuple(columns))
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    if types is not None:
        statement += " (FORMAT BINARY)"
    raw = cast(psycopg.Connection[Any], conn.connection.dbapi_connection)
    converted = _converted(
        rows,
        given,
        [*defaulted.values()],
        converters,
        none_too=False,
        encoded=_encoded_json if types is not None else str,
    )
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            if types is not None:
                copy.set_types(types)
            for values in converted:
                copy.write_row(values)
    except psycopg.Error as exc:  # the same exceptions as any other statement's
        raise DBAPIError.instance(statement, None, exc, psycopg.Error, dialect=dialect) from exc


#: a column's type as the dialect names it -> psycopg's name of its binary form
_BINARY = {
    "BIGINT": "int8",
    "INTEGER": "int4",
    "SMALLINT": "int2",
    "BOOLEAN": "bool",
    "TEXT": "text",
    "VARCHAR": "varchar",
    "BYTEA": "bytea",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "JSONB": "jsonb",
    "JSON": "json",
}


@lru_cache(maxsize=256)
def _binary_types(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> list[str] | None:
    """psycopg's names of ``columns``' types for a binary COPY; None if one has none here.

    The binary format carries each value as its length and bytes: the
    client does not escape text (an HTML body's every line end) nor write
    numbers and instants as digits, and the server does not parse them
    back. Replaying the seven tables' rows that intake writes for 500
    booking events: 70-76 -> 50-52 us of the client's CPU an event,
    112-114 -> 89-94 of the server's (docs/benchmarks.md, "2026-12-07,
    evening"). A type not named here keeps the text format for the table.
    """
    names = [table.c[c].type.compile(dialect=dialect).partition("(")[0] for c in columns]
    types = [_BINARY.get(name) for name in names]
    return None if None in types else cast(list[str], types)


def _as_is(text: str) -> str:
    """The ``dumps`` of a JSON value encoded already."""
    return text


def _encoded_json(value: JSONText) -> Jsonb:
    """A JSON value encoded already, for a binary COPY: psycopg's binary JSON dumpers send
    it as it is (given the text plain, they would encode it again, as a JSON string)."""
    return Jsonb(value, _as_is)
