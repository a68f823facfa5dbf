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
from contextlib import AbstractContextManager, ExitStack
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
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

    __slots__ = (
        "binds",
        "defaults",
        "expanding",
        "names",
        "procs",
        "returns",
        "row",
        "sql",
        "sqls",
    )

    def __init__(self, stmt: Executable, dialect: Dialect, keys: tuple[str, ...] | None) -> None:
        c: Any = stmt.compile(dialect=dialect, column_keys=list(keys) if keys else None)
        if not c.positional:
            raise _Unfit(c.string)
        # ``IN`` lists (expanding parameters) are rendered per list length; nothing else may
        # be left for SQLAlchemy's post-compilation.
        self.expanding = tuple(sorted(n for n, bp in c.binds.items() if bp.expanding))
        rest = c.string
        for n in self.expanding:
            rest = rest.replace(f"__[POSTCOMPILE_{n}]", "")
        if "POSTCOMPILE" in rest:
            raise _Unfit(c.string)
        self.sqls: dict[tuple[int, ...], str] = {}
        if getattr(c, "insert_prefetch", None) or getattr(c, "update_prefetch", None):
            raise _Unfit("Python-side column defaults")  # SQLAlchemy computes those
        self.sql: str = c.string
        self.names: tuple[str, ...] = tuple(c.positiontup or ())
        self.defaults: dict[str, Any] = dict(c.params)
        self.binds: dict[str, Callable[[Any], Any]] = {
            k: v for k, v in (c._bind_processors or {}).items() if v is not None
        }
        keys = [col.keyname for col in c._result_columns]
        self.returns = bool(keys)  # rows to read (a SELECT, or DML with RETURNING)
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
        if not self.expanding:
            return tuple(binds[n](values[n]) if n in binds else values[n] for n in self.names)
        out: list[Any] = []
        for n in self.names:
            v = values[n]
            proc = binds.get(n)
            if n in self.expanding:
                out.extend(v if proc is None else [proc(x) for x in v])
            else:
                out.append(v if proc is None else proc(v))
        return tuple(out)

    def statement(self, params: dict[str, Any] | None) -> str | None:
        """The SQL for these parameters (the ``IN`` lists' lengths); None when a list is empty
        (SQLAlchemy renders an empty set its own way)."""
        if not self.expanding:
            return self.sql
        assert params is not None
        lengths = tuple(len(params[n]) for n in self.expanding)
        sql = self.sqls.get(lengths)
        if sql is None:
            if not all(lengths):
                return None
            sql = self.sql
            for n, k in zip(self.expanding, lengths, strict=True):
                sql = sql.replace(f"__[POSTCOMPILE_{n}]", ", ".join("?" * k))
            if len(self.sqls) < 64:
                self.sqls[lengths] = sql
        return sql

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

    def __init__(
        self,
        reads: FastReads,
        raw: Any,
        stack: ExitStack | None,
        conn: Connection | None = None,
    ) -> None:
        self._reads = reads
        self._raw = raw
        self._stack = stack
        self._conn = conn  # given: a transaction's own connection (``raw`` is its DBAPI one)

    def execute(self, stmt: Any, params: Any = None) -> Any:
        many = isinstance(params, list)
        if many and not params:
            return self.connection().execute(stmt, params)
        compiled = self._reads.compiled(stmt, params[0] if many else params)
        if compiled is None:
            return self.connection().execute(stmt, params)
        sql = compiled.statement(params[0] if many else params)
        if sql is None or (many and (compiled.expanding or compiled.returns)):
            return self.connection().execute(stmt, params)
        try:
            if many:
                self._raw.executemany(sql, [compiled.args(p) for p in params])
                return FastResult([])
            cur = self._raw.execute(sql, compiled.args(params))
            try:
                return FastResult(compiled.rows(cur.fetchall()))
            finally:
                cur.close()
        except sqlite3.Error as exc:
            # As SQLAlchemy would raise it (IntegrityError, OperationalError: "disk full"...)
            raise DBAPIError.instance(sql, params, exc, sqlite3.Error) from exc

    def connection(self) -> Connection:
        """The SQLAlchemy connection for everything that is not prepared (opened once)."""
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> Connection:
        assert self._stack is not None
        return self._stack.enter_context(self._reads.fallback())

    def __getattr__(self, name: str) -> Any:  # e.g. ``scalar``, ``dialect``: SQLAlchemy's
        return getattr(self.connection(), name)


class FastReads:
    """Plain ``sqlite3`` connections to one database file, reused from a free list (a list's
    append and pop are atomic: no lock), and the compiled prepared statements."""

    def __init__(
        self,
        engine: Engine,
        path: str,
        fallback: Callable[[], AbstractContextManager[Connection]],
    ) -> None:
        self.engine = engine
        self.path = path
        self.fallback = fallback  # a one-statement SQLAlchemy read, for what is not prepared
        self._free: list[sqlite3.Connection] = []
        self._compiled: dict[tuple[int, tuple[str, ...] | None], _Compiled | None] = {}

    def compiled(self, stmt: Any, params: dict[str, Any] | None) -> _Compiled | None:
        """``stmt`` compiled (None: SQLAlchemy runs it). An INSERT or UPDATE compiles for the
        columns it is given, as SQLAlchemy does."""
        if _PREPARED.get(id(stmt)) is not stmt:
            return None
        dml = getattr(stmt, "is_dml", False)
        keys = tuple(params) if dml and params else None
        key = (id(stmt), keys)
        try:
            return self._compiled[key]
        except KeyError:
            pass
        try:
            found: _Compiled | None = _Compiled(stmt, self.engine.dialect, keys)
        except _Unfit:
            found = None
        self._compiled[key] = found
        return found

    def wrap(self, conn: Connection) -> FastConn:
        """``conn`` (in a transaction), with prepared statements run on its own DBAPI
        connection: the same transaction, without SQLAlchemy's per-statement work."""
        return FastConn(self, conn.connection.dbapi_connection, None, conn)

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


_FAST_KEY = "davdrive.fast_conn"


def remember(s: Any, conn: FastConn) -> None:
    """Keep ``conn`` (``FastReads.wrap`` of ``s``'s connection) for ``connection_of``."""
    s.info[_FAST_KEY] = conn


def connection_of(s: Any) -> Connection:
    """The connection of write session ``s`` for Core statements: prepared ones run on its
    DBAPI connection directly (file SQLite), in the same transaction."""
    return s.info.get(_FAST_KEY) or s.connection()


__all__ = ["FastConn", "FastReads", "FastResult", "connection_of", "prepared", "remember"]
