"""``Database.read_conn(snapshot=False)`` on a file SQLite database runs prepared statements on
a plain sqlite3 connection (``davdrive.metadata.fast_reads``): rows must read exactly as
SQLAlchemy's do, other statements must still work, and connections must be reused."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from davdrive.metadata.db import Database
from davdrive.metadata.fast_reads import FastConn, connection_of, prepared
from davdrive.metadata.schema import Node, User
from davdrive.service import lookup

_USER = prepared(
    select(User.id, User.login, User.is_admin, User.retention).where(User.id == bindparam("uid"))
)
_NODES = prepared(
    select(Node.id, Node.name, Node.is_dir)
    .where(Node.user_id == bindparam("uid"))
    .order_by(Node.id)
)


def both(db: Database, stmt, params):
    """The rows through the fast path and through SQLAlchemy."""
    with db.read_conn(snapshot=False) as fast:
        ours = fast.execute(stmt, params).all()
    with db.read_conn() as conn:  # a snapshot: always SQLAlchemy
        theirs = conn.execute(stmt, params).all()
    return ours, theirs


def test_prepared_rows_read_as_sqlalchemy_rows(drive, alice, db_url):
    db = drive.db
    drive.mkdir(alice, "/docs")
    drive.write_file(alice, "/docs/a.txt", b"hello")
    with db.read_conn(snapshot=False) as conn:
        assert isinstance(conn, FastConn) == db_url.startswith("sqlite")
    for stmt, params in ((_USER, {"uid": alice.user_id}), (_NODES, {"uid": alice.user_id})):
        ours, theirs = both(db, stmt, params)
        assert [tuple(r) for r in ours] == [tuple(r) for r in theirs]
        assert [type(v) for r in ours for v in r] == [type(v) for r in theirs for v in r]
        assert [dict(r._mapping) for r in ours] == [dict(r._mapping) for r in theirs]
    ours, _ = both(db, _USER, {"uid": alice.user_id})
    assert ours[0].login == "alice" and ours[0].is_admin is False and ours[0][1] == "alice"
    # the path lookup's one statement (prepared by lookup.chain_query)
    query = lookup.chain_query(2, False)
    with db.read_conn() as conn:
        root = drive.core.root_id(conn, alice.user_id)
    params = lookup.chain_params(root, ["docs", "a.txt"], None)
    ours, theirs = both(db, query, params)
    assert [dict(r._mapping) for r in ours] == [dict(r._mapping) for r in theirs]
    assert ours[0].n_name == "a.txt" and ours[0].n_size == 5


def test_result_methods_and_unprepared_statements(drive, alice):
    db = drive.db
    with db.read_conn(snapshot=False) as conn:
        r = conn.execute(_USER, {"uid": alice.user_id})
        assert r.first().login == "alice"
        assert conn.execute(_USER, {"uid": -1}).first() is None
        assert conn.execute(_USER, {"uid": alice.user_id}).scalar() == alice.user_id
        assert conn.execute(_USER, {"uid": alice.user_id}).scalar_one() == alice.user_id
        assert conn.execute(_USER, {"uid": -1}).scalar_one_or_none() is None
        assert conn.execute(_NODES, {"uid": alice.user_id}).scalars().all()
        # not prepared: SQLAlchemy runs it, on the same ``with``
        other = select(User.login).where(User.id == alice.user_id)
        assert conn.execute(other).scalar() == "alice"
        assert conn.scalar(other) == "alice"


def test_connections_are_reused_and_survive_errors(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    db.upgrade()
    fast = db._fast
    assert fast is not None
    for _ in range(5):
        with db.read_conn(snapshot=False) as conn:
            conn.execute(_NODES, {"uid": 1}).all()
    assert len(fast._free) == 1  # one at a time: one connection, reused
    with pytest.raises(KeyError), db.read_conn(snapshot=False) as conn:
        conn.execute(_NODES, {"uid": 1}).all()
        raise KeyError("a caller's error")
    assert len(fast._free) == 1
    with db.read_conn(snapshot=False) as a, db.read_conn(snapshot=False) as b:
        assert a._raw is not b._raw  # concurrent users get their own
    assert len(fast._free) == 2
    # reads only: a write through the plain connection is refused by SQLite itself
    with db.read_conn(snapshot=False) as conn, pytest.raises(Exception, match="readonly"):
        conn._raw.execute("DELETE FROM node")
    db.dispose()
    assert not fast._free


def test_postgresql_keeps_sqlalchemy(pg_url):
    db = Database(pg_url)
    assert db._fast is None
    db.dispose()


_SET_QUOTA = prepared(
    update(User).where(User.id == bindparam("uid")).values(quota_bytes=bindparam("q"))
)
_QUOTA = prepared(select(User.quota_bytes).where(User.id == bindparam("uid")))


def test_write_statements_share_the_transaction_and_errors_read_as_sqlalchemy(drive, alice):
    """In a write transaction prepared statements run on its own DBAPI connection: they
    commit and roll back with it, and a constraint error is SQLAlchemy's IntegrityError."""
    db = drive.db
    uid = alice.user_id
    with pytest.raises(RuntimeError), db.write() as s:
        conn = connection_of(s)
        conn.execute(_SET_QUOTA, {"uid": uid, "q": 123})
        assert conn.execute(_QUOTA, {"uid": uid}).scalar() == 123  # seen inside
        raise RuntimeError("roll back")
    with db.read_conn(snapshot=False) as conn:
        assert conn.execute(_QUOTA, {"uid": uid}).scalar() != 123
    with db.write() as s:
        connection_of(s).execute(_SET_QUOTA, {"uid": uid, "q": 456})
    with db.read_conn(snapshot=False) as conn:
        assert conn.execute(_QUOTA, {"uid": uid}).scalar() == 456
    with pytest.raises(IntegrityError), db.write() as s:
        connection_of(s).execute(_SET_QUOTA, {"uid": uid, "q": None})  # NOT NULL
