"""One-statement reads on a file SQLite database without SQLAlchemy's per-statement work.

A small request (a 4 KiB GET, a PUT's credentials check) runs a few one-statement reads. Through
SQLAlchemy each costs ~60-80 µs of Python around ~20 µs of SQLite: a pool checkout and check-in
with their events, the compiled-cache lookup, parameter processing, the execution context, the
result wrapper. Under 16 concurrent clients on two cores that Python holds the GIL, and it was a
third of a small GET's GIL time.

Statements marked with ``prepared`` (module-level constants, built once) are compiled once for
the dialect and run on a plain ``sqlite3`` connection taken from a small free list, in
autocommit (one statement is atomic on its own, as ``read_conn(snapshot=False)`` promises).
Bind and result processors of the statement's types are applied as SQLAlchemy would, so rows
read the same (``row.name``, ``row[0]``, ``row._mapping``). Any other statement run on the same
``FastConn`` goes through an ordinary SQLAlchemy connection, opened on first use. PostgreSQL and
in-memory SQLite never take this path (``Database.read_conn`` decides).
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable

# id(statement) -> statement (kept alive, so the id stays its own for the process's life)
_PREPARED: dict[int, Executable] = {}


def prepared(stmt: Any) -> Any:
    """Mark a module-level statement for the fast read path; returns it unchanged."""
    _PREPARED[id(stmt)] = stmt
    return stmt


class _Unfit(Exception):
    """The statement cannot run outside SQLAlchemy (expanding or duplicate names)."""


class _Compiled:
    """One prepared statement compiled for a dialect: SQL text, how to order and convert the
    parameters, how to build rows."""

    __slots__ = ("binds", "defaults", "names", "procs", "row", "sql")

    def __init__(self, stmt: Executable, dialect: Dialect) -> None:
        c: Any = stmt.compile(dialect=dialect)
        if "POSTCOMPILE" in c.string or not c.positional:
            raise _Unfit(c.string)
        self.sql: str = c.string
        self.names: tuple[str, ...] = tuple(c.positiontup or ())
        self.defaults: dict[str, Any] = dict(c.params)
        self.binds: dict[str, Callable[[Any], Any]] = {
            k: v for k, v in (c._bind_processors or {}).items() if v is not None
        }
        keys = [col.keyname for col in c._result_columns]
        if len(set(keys)) != len(keys):
            raise _Unfit(f"duplicate column names: {keys}")
        self.procs: list[tuple[int, Callable[[Any], Any]]] = []
        for i, col in enumerate(c._result_columns):
            proc = col.type._cached_result_processor(dialect, None)
            if proc is not None:
                self.procs.append((i, proc))
        self.row = _row_class(tuple(keys))

    def args(self, params: dict[str, Any] | None) -> tuple[Any, ...]:
        values = self.defaults if not params else {**self.defaults, **params}
        binds = self.binds
        return tuple(binds[n](values[n]) if n in binds else values[n] for n in self.names)

    def rows(self, raw: list[tuple[Any, ...]]) -> list[Any]:
        make = self.row._make
        if not self.procs:
            return [make(r) for r in raw]
        out = []
        for r in raw:
            values = list(r)
            for i, proc in self.procs:
                values[i] = proc(values[i])
            out.append(make(values))
        return out


def _row_class(keys: tuple[str, ...]) -> type:
    base = namedtuple("Row", keys)  # type: ignore[misc]  # noqa: PYI024 - built at run time

    class Row(base):  # type: ignore[valid-type,misc]
        """A result row: attributes, indexes and ``_mapping`` as SQLAlchemy's ``Row``."""

        __slots__ = ()

        @property
        def _mapping(self) -> dict[str, Any]:
            return dict(zip(self._fields, self, strict=True))

    return Row


class FastResult:
    """The rows of one prepared statement, with the ``Result`` methods the services use."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> list[Any]:
        return self._rows

    fetchall = all

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise ValueError("more than one row")
        return self.first()

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise ValueError(f"expected one row, got {len(self._rows)}")
        return self._rows[0]

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalars(self) -> FastResult:
        return FastResult([r[0] for r in self._rows])


class FastConn:
    """What ``Database.read_conn(snapshot=False)`` yields on a file SQLite database: prepared
    statements on a plain connection, anything else on a SQLAlchemy connection."""

    def __init__(self, reads: FastReads, raw: sqlite3.Connection, stack: ExitStack) -> None:
        self._reads = reads
        self._raw = raw
        self._stack = stack
        self._conn: Connection | None = None

    def execute(self, stmt: Any, params: dict[str, Any] | None = None) -> Any:
        compiled = self._reads.compiled(stmt)
        if compiled is None:
            return self.connection().execute(stmt, params)
        cur = self._raw.execute(compiled.sql, compiled.args(params))
        try:
            return FastResult(compiled.rows(cur.fetchall()))
        finally:
            cur.close()

    def connection(self) -> Connection:
        """The SQLAlchemy connection for everything that is not prepared (opened once)."""
        if self._conn is None:
            conn = self._stack.enter_context(self._reads.engine.connect())
            conn.execution_options(sqlite_begin="NONE")
            self._stack.enter_context(conn.begin())
            self._conn = conn
        return self._conn

    def __getattr__(self, name: str) -> Any:  # e.g. ``scalar``, ``dialect``: SQLAlchemy's
        return getattr(self.connection(), name)


class FastReads:
    """Plain ``sqlite3`` connections to one database file, reused from a free list (a list's
    append and pop are atomic: no lock), and the compiled prepared statements."""

    def __init__(self, engine: Engine, path: str) -> None:
        self.engine = engine
        self.path = path
        self._free: list[sqlite3.Connection] = []
        self._compiled: dict[int, _Compiled | None] = {}

    def compiled(self, stmt: Any) -> _Compiled | None:
        key = id(stmt)
        try:
            return self._compiled[key]
        except KeyError:
            pass
        found = None
        if _PREPARED.get(key) is stmt:
            try:
                found = _Compiled(stmt, self.engine.dialect)
            except _Unfit:
                found = None
        self._compiled[key] = found
        return found

    def _connect(self) -> sqlite3.Connection:
        raw = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        raw.execute("PRAGMA busy_timeout=30000")
        raw.execute("PRAGMA query_only=ON")  # reads only: a slip would fail, not write
        return raw

    def open(self) -> Iterator[FastConn]:
        """A ``FastConn`` for one ``with`` block (a generator for ``contextmanager``)."""
        try:
            raw = self._free.pop()
        except IndexError:
            raw = self._connect()
        try:
            with ExitStack() as stack:
                yield FastConn(self, raw, stack)
        finally:
            # Autocommit and every cursor read to its end: nothing is left open on it.
            self._free.append(raw)

    def dispose(self) -> None:
        while self._free:
            self._free.pop().close()


__all__ = ["FastConn", "FastReads", "FastResult", "prepared"]
