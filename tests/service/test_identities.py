"""Identities on SQLite and PostgreSQL: ids never reused, migration 0003, revocation that counts
at once in every process, devices (list, revoke, unique names), canonical lowercase logins."""

from __future__ import annotations

import re
import time
import warnings

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from davdrive import errors
from davdrive.blockstore.keys import KeyRing
from davdrive.blockstore.store import BlockStore
from davdrive.metadata.db import MIGRATIONS, Database
from davdrive.metadata.schema import Base
from davdrive.service.auth import Accounts, DeviceInfo, validate_login
from davdrive.service.drive import Drive
from davdrive.storage.memory import MemoryBackend
from tests.service.test_auth import CountingHasher

AUTOINCREMENT_TABLES = ("users", "device", "node", "file_version", "block")


class Process:
    """What one server or CLI process holds: its own Database, KeyRing, Drive and Accounts
    over the shared database, key file and block backend."""

    def __init__(self, db_url: str, key_file: str, backend: MemoryBackend) -> None:
        self.db = Database(db_url)
        self.db.upgrade()
        self.drive = Drive(
            self.db, BlockStore(backend, zstd_level=1, threads=2), KeyRing.load_or_create(key_file)
        )
        self.hasher = CountingHasher()
        self.accounts = Accounts(self.drive, hasher=self.hasher)

    def close(self) -> None:
        self.drive.store.close()
        self.db.dispose()


@pytest.fixture
def procs(db_url, tmp_path):
    """``make()`` -> a new Process on the test's database; all closed at the end."""
    backend = MemoryBackend()
    made: list[Process] = []

    def make() -> Process:
        made.append(Process(db_url, str(tmp_path / "master.key"), backend))
        return made[-1]

    yield make
    for proc in made:
        proc.close()


# -- ids are never reused -------------------------------------------------------------------------
def max_ids(db: Database) -> dict[str, int]:
    with db.read() as s:
        return {t: s.scalar(text(f"SELECT max(id) FROM {t}")) or 0 for t in AUTOINCREMENT_TABLES}


def test_no_id_is_reused_after_deletes(procs):
    proc = procs()
    acc, drive = proc.accounts, proc.drive
    alice = acc.add_user("alice", "pw")
    drive.write_file(alice, "/a.txt", b"alice's content")
    acc.add_device(alice, "phone")
    before = max_ids(proc.db)
    acc.delete_user("alice")  # the highest id of every table is gone
    bob = acc.add_user("bob", "pw")
    drive.write_file(bob, "/b.txt", b"bob's content")
    device_id, _, _ = acc.add_device(bob, "phone")
    after = max_ids(proc.db)
    assert bob.user_id > alice.user_id
    for table in AUTOINCREMENT_TABLES:
        assert after[table] > before[table], table
    acc.revoke_device("bob", "phone")
    assert acc.add_device(bob, "phone")[0] > device_id


def test_new_account_never_gets_a_deleted_accounts_cached_keys(procs):
    """The data-loss bug: a running server cached the keys of the last account; the CLI deleted
    it and added another, which (id reused) got the same id. The server then encrypted the new
    account's blocks with the deleted account's keys: unreadable by any other process."""
    server, cli = procs(), procs()
    alice = cli.accounts.add_user("alice", "pw")
    server.drive.write_file(alice, "/a.txt", b"a" * 1000)  # the server caches alice's keys
    cli.accounts.delete_user("alice")
    bob = cli.accounts.add_user("bob", "pw")
    assert bob.user_id != alice.user_id
    server.drive.write_file(server.drive.principal("bob"), "/b.txt", b"b" * 1000)
    fresh = procs()  # a restarted server or another process of a scale-out
    assert fresh.drive.read_bytes(fresh.drive.principal("bob"), "/b.txt") == b"b" * 1000


# -- credentials die at once in every process -----------------------------------------------------
def test_password_change_in_another_process_counts_on_the_next_request(procs):
    server, cli = procs(), procs()
    cli.accounts.add_user("alice", "old-pw")
    server.accounts.authenticate("alice", "old-pw")
    server.hasher.verifies = 0
    for _ in range(5):
        assert server.accounts.authenticate("alice", "old-pw").login == "alice"
    assert server.hasher.verifies == 0  # cache hits cost no argon2
    cli.accounts.set_password("alice", "new-pw")
    with pytest.raises(errors.NotAuthenticated):
        server.accounts.authenticate("alice", "old-pw")  # no waiting for the cache TTL
    assert server.accounts.authenticate("alice", "new-pw").login == "alice"


def test_deleted_and_recreated_account_never_matches_a_cached_entry(procs):
    server, cli = procs(), procs()
    old = cli.accounts.add_user("alice", "pw")
    assert server.accounts.authenticate("alice", "pw").user_id == old.user_id
    cli.accounts.delete_user("alice")
    with pytest.raises(errors.NotAuthenticated):
        server.accounts.authenticate("alice", "pw")
    new = cli.accounts.add_user("alice", "pw")  # same login, same password
    assert server.accounts.authenticate("alice", "pw").user_id == new.user_id != old.user_id


def test_device_revoked_in_another_process_stops_at_once(procs):
    server, cli = procs(), procs()
    alice = cli.accounts.add_user("alice", "pw")
    device_id, app_pw, token = cli.accounts.add_device(alice, "phone")
    assert server.accounts.authenticate("alice", app_pw).device_id == device_id
    assert server.accounts.authenticate_token(token).device_id == device_id
    info = cli.accounts.revoke_device("alice", "phone")
    assert (info.id, info.login, info.name) == (device_id, "alice", "phone")
    with pytest.raises(errors.NotAuthenticated):
        server.accounts.authenticate("alice", app_pw)
    with pytest.raises(errors.NotAuthenticated):
        server.accounts.authenticate_token(token)
    assert server.accounts.authenticate("alice", "pw").device_id is None  # the account stays


def test_password_change_keeps_device_app_passwords(procs):
    server, cli = procs(), procs()
    alice = cli.accounts.add_user("alice", "pw")
    _, app_pw, _ = cli.accounts.add_device(alice, "phone")
    server.accounts.authenticate("alice", app_pw)
    cli.accounts.set_password("alice", "pw2")
    assert server.accounts.authenticate("alice", app_pw).login == "alice"


# -- devices --------------------------------------------------------------------------------------
def test_list_and_revoke_devices(procs):
    acc = procs().accounts
    alice = acc.add_user("alice", "pw")
    bob = acc.add_user("bob", "pw")
    phone, _, _ = acc.add_device(alice, "phone")
    laptop, _, _ = acc.add_device(alice, "Laptop")
    bobs, _, _ = acc.add_device(bob, "desk")
    listed = acc.list_devices()
    assert [(d.login, d.name) for d in listed] == [
        ("alice", "Laptop"),
        ("alice", "phone"),
        ("bob", "desk"),
    ]
    d = listed[1]
    assert isinstance(d, DeviceInfo) and d.id == phone and d.last_cursor == 0
    assert d.created <= time.time() and d.last_seen is None
    assert [d.id for d in acc.list_devices("ALICE")] == [laptop, phone]
    with pytest.raises(errors.NotFound):
        acc.list_devices("nobody")

    with pytest.raises(errors.NotFound):
        acc.revoke_device("alice", str(bobs))  # another account's device id
    with pytest.raises(errors.NotFound):
        acc.revoke_device("alice", "desk")
    with pytest.raises(errors.NotFound):
        acc.revoke_device("nobody", "phone")
    with pytest.raises(errors.NotFound):
        acc.revoke_device("alice", "bad\x00name")
    assert acc.revoke_device("alice", str(laptop)).name == "Laptop"  # by id
    assert acc.revoke_device("Alice", "PHONE").id == phone  # by name, any case
    assert acc.list_devices("alice") == []
    with pytest.raises(errors.NotFound):
        acc.revoke_device("alice", "phone")
    assert [d.id for d in acc.list_devices()] == [bobs]


def test_revoke_device_by_int_means_the_id_only(procs):
    acc = procs().accounts
    alice = acc.add_user("alice", "pw")
    named, _, _ = acc.add_device(alice, "999999")
    with pytest.raises(errors.NotFound):
        acc.revoke_device("alice", 999999)  # (the API's DELETE /devices/<id>)
    assert acc.revoke_device("alice", "999999").id == named  # a str may be the name


def test_device_names_are_unique_per_account_case_insensitively(procs):
    acc = procs().accounts
    alice = acc.add_user("alice", "pw")
    bob = acc.add_user("bob", "pw")
    acc.add_device(alice, "Phone")
    for dup in ("phone", " PHONE ", "Phone"):
        with pytest.raises(errors.AlreadyExists):
            acc.add_device(alice, dup)
    acc.add_device(bob, "phone")  # another account may
    for bad in ("", "  ", "x" * 129, "a\x00b", "tab\there"):
        with pytest.raises(errors.BadRequest):
            acc.add_device(alice, bad)
    # the database enforces it too (two processes adding at once)
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        with acc.db.write() as s:
            s.execute(
                text(
                    "INSERT INTO device (user_id, name, last_cursor, created_at) "
                    "VALUES (:u, 'PHONE', 0, 0)"
                ),
                {"u": alice.user_id},
            )


# -- canonical logins -----------------------------------------------------------------------------
def test_logins_are_stored_and_matched_lowercase(procs):
    acc = procs().accounts
    assert validate_login("Alice.B") == "alice.b"
    p = acc.add_user("Alice", "pw")
    assert p.login == "alice"
    assert [u.login for u in acc.list_users()] == ["alice"]
    for taken in ("alice", "ALICE", "aLiCe"):
        with pytest.raises(errors.AlreadyExists):
            acc.add_user(taken, "pw")
    assert acc.authenticate("ALICE", "pw").login == "alice"
    assert acc.drive.principal("AlIcE").user_id == p.user_id
    acc.set_password("ALICE", "pw2")
    assert acc.authenticate("alice", "pw2").user_id == p.user_id
    acc.add_device(acc.drive.principal("Alice"), "phone")
    assert [d.login for d in acc.list_devices("ALICE")] == ["alice"]
    acc.delete_user("Alice")
    assert acc.list_users() == []


# -- migration 0003 -------------------------------------------------------------------------------
def upgrade_to(db: Database, revision: str) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection_engine"] = db.engine
    command.upgrade(cfg, revision)


USER_SQL = (
    "INSERT INTO users (login, password_hash, is_admin, quota_bytes, used_bytes, wrapped_key, "
    "wrap_key_id, data_key_id, change_seq, created_at) "
    "VALUES (:login, 'h', false, 0, 0, :key, 'k', 1, 0, 0)"
)


def seed_0002(db: Database) -> dict[str, int]:
    """Rows as a 0002 database may hold them, clashing logins and device names included."""
    ids: dict[str, int] = {}
    with db.write() as s:
        for login in ("alice", "Alice", "BOB", "Bob", "carol", "Dave", "x" * 64, "X" * 64):
            s.execute(text(USER_SQL), {"login": login, "key": b"wrapped"})
            ids[login] = s.scalar(text("SELECT max(id) FROM users"))
        uid = ids["alice"]
        node = "INSERT INTO node (user_id, parent_id, name, is_dir, status, mtime, created_at) "
        s.execute(text(node + "VALUES (:u, NULL, '', true, 'ok', 0, 0)"), {"u": uid})
        root = s.scalar(text("SELECT max(id) FROM node"))
        s.execute(text(node + "VALUES (:u, :p, 'f.txt', false, 'ok', 0, 0)"), {"u": uid, "p": root})
        ids["node"] = s.scalar(text("SELECT max(id) FROM node"))
        s.execute(
            text(
                "INSERT INTO file_version (node_id, user_id, size, content_hash, mtime, "
                "created_at, pinned) VALUES (:n, :u, 1, 'h', 0, 0, false)"
            ),
            {"n": ids["node"], "u": uid},
        )
        ids["version"] = s.scalar(text("SELECT max(id) FROM file_version"))
        s.execute(
            text(
                "INSERT INTO block (user_id, hash, object_key, raw_size, stored_size, tier, "
                "created_at, last_access) VALUES (:u, 'h', 'o', 1, 1, 'hot', 0, 0)"
            ),
            {"u": uid},
        )
        ids["block"] = s.scalar(text("SELECT max(id) FROM block"))
        s.execute(
            text(
                'INSERT INTO version_block (version_id, seq, block_id, "offset", size) '
                "VALUES (:v, 0, :b, 0, 1)"
            ),
            {"v": ids["version"], "b": ids["block"]},
        )
        s.execute(
            text(
                "INSERT INTO change (user_id, seq, kind, path, is_dir, at) "
                "VALUES (:u, 1, 'write', '/f.txt', false, 0)"
            ),
            {"u": uid},
        )
        s.execute(
            text("INSERT INTO dead_property (node_id, name, value) VALUES (:n, '{x:}y', :v)"),
            {"n": ids["node"], "v": b"z"},
        )
        for name in ("phone", "Phone", "PHONE", "phone (2)", "laptop"):
            s.execute(
                text(
                    "INSERT INTO device (user_id, name, last_cursor, created_at) "
                    "VALUES (:u, :n, 0, 0)"
                ),
                {"u": uid, "n": name},
            )
        s.execute(
            text(
                "INSERT INTO device (user_id, name, last_cursor, created_at) "
                "VALUES (:u, 'phone', 0, 0)"
            ),
            {"u": ids["carol"]},
        )
    return ids


def _sqlite_schema(engine) -> dict[tuple[str, str], object]:
    """Every table and index of a SQLite database, normalized: a table's columns in order and
    its table constraints as a set (their order differs between a rebuild and create_all)."""
    out: dict[tuple[str, str], object] = {}
    with engine.connect() as c:
        rows = c.exec_driver_sql(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
            "AND name NOT IN ('alembic_version', 'sqlite_sequence')"
        ).all()
    for kind, name, sql in rows:
        sql = re.sub(r"\s+", " ", sql).replace(f'"{name}"', name).strip()
        if kind != "table":
            out[(kind, name)] = sql
            continue
        body = sql[sql.index("(") + 1 : sql.rindex(")")]
        items, depth, cur = [], 0, ""
        for ch in body:
            depth += ch == "("
            depth -= ch == ")"
            if ch == "," and depth == 0:
                items.append(cur.strip())
                cur = ""
            else:
                cur += ch
        items.append(cur.strip())
        columns = [i for i in items if not i.startswith("CONSTRAINT")]
        out[(kind, name)] = (columns, frozenset(i for i in items if i.startswith("CONSTRAINT")))
    return out


def test_migration_0003_keeps_data_and_matches_a_fresh_schema(db_url, tmp_path):
    db = Database(db_url)
    try:
        upgrade_to(db, "0002")
        ids = seed_0002(db)
        db.upgrade()
        with db.read() as s:
            logins = dict(s.execute(text("SELECT id, login FROM users")).all())
            devices = s.execute(text("SELECT user_id, name FROM device ORDER BY id")).all()
            counts = {
                t: s.scalar(text(f"SELECT count(*) FROM {t}"))
                for t in ("node", "file_version", "block", "version_block", "change")
            }
            gens = set(s.scalars(text("SELECT cred_gen FROM users")))
            prop = s.scalar(text("SELECT value FROM dead_property"))
        # lowercase where no clash; the already-lowercase one (else the oldest) keeps the name
        assert logins[ids["alice"]] == "alice" and logins[ids["Alice"]] == "alice-2"
        assert logins[ids["BOB"]] == "bob" and logins[ids["Bob"]] == "bob-2"
        assert logins[ids["Dave"]] == "dave" and logins[ids["carol"]] == "carol"
        assert logins[ids["x" * 64]] == "x" * 64 and logins[ids["X" * 64]] == "x" * 62 + "-2"
        assert all(login == login.lower() for login in logins.values())
        alice, carol = ids["alice"], ids["carol"]
        assert devices == [
            (alice, "phone"),
            (alice, "Phone (3)"),
            (alice, "PHONE (4)"),
            (alice, "phone (2)"),
            (alice, "laptop"),
            (carol, "phone"),
        ]
        assert counts == dict.fromkeys(counts, 1) | {"node": 2}
        assert gens == {0} and bytes(prop) == b"z"

        if db.is_sqlite:
            with db.engine.connect() as c:
                assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert c.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            fresh = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
            Base.metadata.create_all(fresh)
            assert _sqlite_schema(db.engine) == _sqlite_schema(fresh)
            fresh.dispose()
            for table in AUTOINCREMENT_TABLES:
                with db.engine.connect() as c:
                    sql = c.exec_driver_sql(
                        "SELECT sql FROM sqlite_master WHERE name = ?", (table,)
                    ).scalar()
                assert "AUTOINCREMENT" in sql, table
        else:
            with db.engine.connect() as c:
                indexdef = c.exec_driver_sql(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_device_user_name'"
                ).scalar()
            assert "UNIQUE" in indexdef and "lower((name)::text)" in indexdef
        with db.engine.connect() as c:
            ctx = MigrationContext.configure(
                c, opts={"compare_type": True, "compare_server_default": True}
            )
            with warnings.catch_warnings():  # SQLite cannot reflect the expression index
                warnings.simplefilter("ignore")
                assert compare_metadata(ctx, Base.metadata) == []

        # ids go on from the highest ever, even after the highest row is deleted
        with db.write() as s:
            s.execute(text("DELETE FROM users WHERE id = :i"), {"i": max(logins)})
            s.execute(text(USER_SQL), {"login": "eve", "key": b"k"})
            assert s.scalar(text("SELECT id FROM users WHERE login = 'eve'")) > max(logins)
        db.upgrade()  # at head: nothing to do
    finally:
        db.dispose()


def test_migration_0003_on_a_fresh_database_matches_create_all(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    fresh = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        db.upgrade()
        Base.metadata.create_all(fresh)
        assert _sqlite_schema(db.engine) == _sqlite_schema(fresh)
    finally:
        db.dispose()
        fresh.dispose()
