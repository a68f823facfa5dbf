"""Names in one Unicode form (NFC) on SQLite and PostgreSQL: a name sent in NFD (macOS) and the
same name in NFC reach one file through every service entry point; migration 0004 renames the
NFD names an older store holds (suffixing clashes with an NFC twin) and journals the renames."""

from __future__ import annotations

import io
import logging
import unicodedata
from urllib.parse import quote

import pytest
from sqlalchemy import text

from davdrive import errors
from davdrive.metadata.db import Database
from davdrive.service.changes import Changes
from davdrive.service.paths import check_name, normalize_name, parent_and_name, split_path
from davdrive.service.sync import sync_collection
from davdrive.service.uploads import ResumableUploads
from tests.service.conftest import make_drive
from tests.service.test_identities import USER_SQL, upgrade_to


def nfd(s: str) -> str:
    return unicodedata.normalize("NFD", s)


def nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


CAFE = "caf\u00e9.txt"  # NFC
CAFE_NFD = nfd(CAFE)  # "cafe" + COMBINING ACUTE ACCENT
assert CAFE != CAFE_NFD


def is_nfc(s: str) -> bool:
    return unicodedata.is_normalized("NFC", s)


# -- paths.py -------------------------------------------------------------------------------------
def test_paths_return_nfc():
    assert split_path(f"/R\u00e9sum\u00e9s/{CAFE_NFD}") == ["R\u00e9sum\u00e9s", CAFE]
    assert split_path(nfd("/R\u00e9sum\u00e9s/") + CAFE) == ["R\u00e9sum\u00e9s", CAFE]
    assert parent_and_name("/" + nfd("\u00dcn\u00efcode") + "/" + CAFE_NFD) == (
        ["\u00dcn\u00efcode"],
        CAFE,
    )
    assert check_name(CAFE_NFD) == CAFE and normalize_name("plain.txt") == "plain.txt"
    # canonical singletons too: KELVIN SIGN is K, OHM SIGN is GREEK CAPITAL OMEGA
    assert check_name("\u212a\u2126") == "K\u03a9"
    # the byte limit applies to the stored (NFC) form: 100 x "é" is 300 bytes in NFD, 200 in NFC
    assert check_name(nfd("\u00e9" * 100)) == "\u00e9" * 100
    with pytest.raises(errors.BadRequest):
        check_name(nfd("\u00e9" * 128))  # 256 bytes in NFC
    for bad in ["..", ".", "", "a\x00b", "a/b", "\x1f", "a\udcffb"]:
        with pytest.raises(errors.BadRequest):
            check_name(bad)


# -- every entry point ----------------------------------------------------------------------------
def test_nfd_and_nfc_reach_one_file(drive, alice):
    drive.write_file(alice, "/" + CAFE_NFD, b"one")
    assert drive.read_bytes(alice, "/" + CAFE) == b"one"
    info = drive.write_file(alice, "/" + CAFE, b"two")
    assert drive.read_bytes(alice, "/" + CAFE_NFD) == b"two"
    assert (info.name, info.path) == (CAFE, "/" + CAFE)
    listed = drive.list_dir(alice, "/")
    assert [(m.name, m.path) for m in listed] == [(CAFE, "/" + CAFE)]
    assert drive.stat(alice, "/" + CAFE_NFD).id == info.id
    assert [v.id for v in drive.list_versions(alice, "/" + CAFE_NFD)] == [
        v.id for v in drive.list_versions(alice, "/" + CAFE)
    ]
    with pytest.raises(errors.PreconditionFailed):
        drive.write_file(alice, "/" + CAFE_NFD, b"x", create_only=True)
    # dead properties are keyed by node id: both spellings reach the same ones
    drive.set_dead_prop(alice, drive.stat(alice, "/" + CAFE_NFD).id, "{urn:x}tag", b"v")
    assert drive.get_dead_props(alice, [drive.stat(alice, "/" + CAFE).id]) == {
        info.id: {"{urn:x}tag": b"v"}
    }


def test_folders_moves_copies_and_the_journal(drive, alice):
    folder = "\u00dcn\u00efcode"
    feed = Changes(drive)
    start = feed.latest(alice)
    drive.mkdir(alice, "/" + nfd(folder))
    with pytest.raises(errors.AlreadyExists):
        drive.mkdir(alice, "/" + folder)
    drive.write_file(alice, f"/{folder}/{CAFE_NFD}", b"x")
    drive.move(alice, f"/{nfd(folder)}/{CAFE}", "/" + nfd("na\u00efve.txt"))
    copied = nfd("copi\u00e9.txt")
    drive.copy(alice, "/na\u00efve.txt", f"/{nfd(folder)}/{copied}")
    assert [m.name for m in drive.list_dir(alice, "/")] == ["na\u00efve.txt", folder]
    assert [m.path for m in drive.list_dir(alice, "/" + nfd(folder))] == [
        f"/{folder}/copi\u00e9.txt"
    ]
    entries, _, _ = drive.list_tree(alice, "/")
    assert all(is_nfc(e.path) and is_nfc(e.name) for e in entries) and len(entries) == 3
    # moving onto the other spelling of the same name is the same node: no duplicate appears
    with pytest.raises(errors.PermissionDenied):
        drive.move(alice, "/na\u00efve.txt", "/" + nfd("na\u00efve.txt"))
    drive.delete(alice, "/" + nfd("na\u00efve.txt"))
    changes, _, _ = feed.since(alice, start)
    assert changes and all(is_nfc(c.path) and is_nfc(c.from_path or "") for c in changes)
    members, _ = sync_collection(drive, alice, "/" + nfd(folder), None, infinite=False)
    assert [m.path for m in members] == [f"/{folder}/copi\u00e9.txt"]


def test_trash_keeps_and_restores_nfc_names(drive, alice):
    drive.write_file(alice, "/" + CAFE_NFD, b"old")
    drive.delete(alice, "/" + CAFE)
    [item] = drive.list_trash(alice)
    assert (item.name, item.path) == (CAFE, "/" + CAFE)
    drive.write_file(alice, "/" + CAFE_NFD, b"new")  # the name is taken again, in NFD this time
    restored = drive.restore_trash(alice, item.id)
    assert restored.name == "caf\u00e9 (restored).txt" and is_nfc(restored.path)
    assert {m.name for m in drive.list_dir(alice, "/")} == {CAFE, "caf\u00e9 (restored).txt"}


def test_upload_sessions_store_nfc_paths(drive, alice):
    uploads = ResumableUploads(drive)
    session = uploads.create(alice, "/" + CAFE_NFD, 3)
    assert session.path == "/" + CAFE
    assert uploads.pending(alice, "/" + CAFE).id == session.id
    assert uploads.pending(alice, "/" + CAFE_NFD).id == session.id
    with drive.db.read() as s:
        assert s.scalar(text("SELECT path FROM upload_session")) == "/" + CAFE
    uploads.append(alice, session.id, 0, io.BytesIO(b"abc").read, 3)
    assert drive.read_bytes(alice, "/" + CAFE_NFD) == b"abc"
    assert [m.name for m in drive.list_dir(alice, "/")] == [CAFE]


# -- migration 0004 -------------------------------------------------------------------------------
NODE_SQL = (
    "INSERT INTO node (user_id, parent_id, name, is_dir, status, mtime, created_at, trashed_at, "
    "trashed_path) VALUES (:u, :p, :n, :d, 'ok', 0, 0, :t, :tp)"
)
LONG = "\u00e9" * 125 + ".txt"  # 254 bytes in NFC: " (2)" does not fit without shortening


def seed_0003(db: Database) -> dict[str, int]:
    """A 0003 store written before names were normalised: NFD names, some beside an NFC twin."""
    ids: dict[str, int] = {}

    def node(s, key: str, user: str, parent: str | None, name: str, **kw) -> None:  # noqa: ANN001
        s.execute(
            text(NODE_SQL),
            {
                "u": ids[user],
                "p": ids[parent] if parent else None,
                "n": name,
                "d": kw.get("is_dir", False),
                "t": kw.get("trashed_at"),
                "tp": kw.get("trashed_path"),
            },
        )
        ids[key] = s.scalar(text("SELECT max(id) FROM node"))

    with db.write() as s:
        for login in ("alice", "bob"):
            s.execute(text(USER_SQL), {"login": login, "key": b"wrapped"})
            ids[login] = s.scalar(text("SELECT max(id) FROM users"))
        s.execute(text("UPDATE users SET change_seq = 1 WHERE id = :u"), {"u": ids["alice"]})
        s.execute(
            text(
                "INSERT INTO change (user_id, seq, kind, path, is_dir, at) "
                "VALUES (:u, 1, 'created', :p, false, 0)"
            ),
            {"u": ids["alice"], "p": "/" + CAFE_NFD},
        )
        node(s, "root", "alice", None, "", is_dir=True)
        node(s, "nfc", "alice", "root", CAFE)
        node(s, "twin", "alice", "root", CAFE_NFD)
        s.execute(
            text(
                "INSERT INTO file_version (node_id, user_id, size, content_hash, mtime, "
                "created_at, pinned) VALUES (:n, :u, 1, 'h', 0, 0, false)"
            ),
            {"n": ids["twin"], "u": ids["alice"]},
        )
        ids["twin_version"] = s.scalar(text("SELECT max(id) FROM file_version"))
        s.execute(
            text("UPDATE node SET current_version_id = :v WHERE id = :n"),
            {"v": ids["twin_version"], "n": ids["twin"]},
        )
        node(s, "alone", "alice", "root", nfd("r\u00e9sum\u00e9.pdf"))
        node(s, "dir", "alice", "root", nfd("\u00dcn\u00efcode"), is_dir=True)
        node(s, "child", "alice", "dir", nfd("na\u00efve.md"))
        node(s, "zoe", "alice", "root", "Zo\u00eb", is_dir=True)
        node(s, "zoe_nfd", "alice", "root", nfd("Zo\u00eb"), is_dir=True)
        node(s, "zoe_child", "alice", "zoe_nfd", "x")
        node(s, "marks1", "alice", "root", "e\u0301\u0323.txt")  # two non-NFC spellings of
        node(s, "marks2", "alice", "root", "e\u0323\u0301.txt")  # one NFC name
        node(s, "long", "alice", "root", LONG)
        node(s, "long_nfd", "alice", "root", nfd(LONG))
        node(s, "trashed", "alice", "root", CAFE_NFD, trashed_at=1.0, trashed_path="/" + CAFE_NFD)
        node(s, "bin", "alice", "root", "Bin", is_dir=True, trashed_at=1.0, trashed_path="/Bin")
        node(s, "in_bin", "alice", "bin", nfd("\u00f1.txt"))
        node(s, "bob_root", "bob", None, "", is_dir=True)
        node(s, "bob_file", "bob", "bob_root", CAFE_NFD)
        s.execute(
            text(
                'INSERT INTO upload_session (id, user_id, path, length, "offset", '
                "metadata_raw, tail_size, blocks_count, created_at, expires_at) "
                "VALUES ('s1', :u, :p, 1, 0, '', 0, 0, 0, 9e9)"
            ),
            {"u": ids["alice"], "p": "/" + nfd("\u00dcn\u00efcode/na\u00efve.md")},
        )
        for token, path in [
            ("kept", "/dav/alice/" + nfd("r\u00e9sum\u00e9.pdf")),
            ("twin", "/dav/alice/" + CAFE_NFD),
            ("below", "/dav/alice/" + nfd("Zo\u00eb") + "/x"),
            ("nfc", "/dav/alice/" + CAFE),
        ]:
            s.execute(
                text(
                    "INSERT INTO dav_lock (token, root, type, scope, depth, owner, principal, "
                    "timeout, expire) VALUES (:t, :r, 'write', 'exclusive', '0', :o, 'alice', "
                    "60, 9e9)"
                ),
                {"t": token, "r": quote(path), "o": b""},
            )
    return ids


def test_migration_0004_normalises_names(db_url, tmp_path, caplog):
    db = Database(db_url)
    try:
        upgrade_to(db, "0003")
        ids = seed_0003(db)
        with caplog.at_level(logging.INFO, logger="alembic.runtime.migration"):
            db.upgrade()
        with db.read() as s:
            names = dict(s.execute(text("SELECT id, name FROM node")).all())
            moved = s.execute(
                text(
                    "SELECT user_id, seq, node_id, from_path, path, version_id, is_dir "
                    "FROM change WHERE kind = 'moved' ORDER BY user_id, seq"
                )
            ).all()
            seqs = dict(s.execute(text("SELECT id, change_seq FROM users")).all())
            mtimes = dict(s.execute(text("SELECT id, mtime FROM node")).all())
            trashed_path = s.scalar(
                text("SELECT trashed_path FROM node WHERE id = :i"), {"i": ids["trashed"]}
            )
            upload = s.scalar(text("SELECT path FROM upload_session"))
            locks = dict(s.execute(text("SELECT token, root FROM dav_lock")).all())
        assert all(is_nfc(n) for n in names.values())
        expected = {
            "nfc": CAFE,
            "twin": "caf\u00e9 (2).txt",
            "alone": "r\u00e9sum\u00e9.pdf",
            "dir": "\u00dcn\u00efcode",
            "child": "na\u00efve.md",
            "zoe": "Zo\u00eb",
            "zoe_nfd": "Zo\u00eb (2)",  # a folder: no extension to put the suffix before
            "marks1": "\u1eb9\u0301.txt",  # the oldest spelling gets the plain name
            "marks2": "\u1eb9\u0301 (2).txt",
            "long": LONG,
            "trashed": CAFE,  # trashed names may repeat a live one
            "in_bin": "\u00f1.txt",
            "bob_file": CAFE,
        }
        assert {k: names[ids[k]] for k in expected} == expected
        long_twin = names[ids["long_nfd"]]
        assert long_twin.endswith(" (2).txt") and len(long_twin.encode()) <= 255
        assert long_twin == "\u00e9" * 123 + " (2).txt"

        # every rename in the live tree is journaled as a move, after the existing changes
        a, b = ids["alice"], ids["bob"]
        rows = {r.node_id: r for r in moved}
        assert set(rows) == {
            ids[k]
            for k in ("twin", "alone", "dir", "child", "zoe_nfd", "marks1", "marks2", "long_nfd")
        } | {ids["bob_file"]}
        assert [r.seq for r in moved if r.user_id == a] == list(range(2, 10))
        assert seqs == {a: 9, b: 1}
        twin = rows[ids["twin"]]
        assert (twin.from_path, twin.path) == ("/" + CAFE_NFD, "/caf\u00e9 (2).txt")
        assert twin.version_id == ids["twin_version"] and not twin.is_dir
        # the folder first, then its member under the folder's new name
        assert rows[ids["dir"]].seq < rows[ids["child"]].seq and rows[ids["dir"]].is_dir
        child = rows[ids["child"]]
        assert child.from_path == "/\u00dcn\u00efcode/" + nfd("na\u00efve.md")
        assert child.path == "/\u00dcn\u00efcode/na\u00efve.md"
        # the folders that lost or gained a name changed ETag (mtime), as after a MOVE
        assert mtimes[ids["root"]] > 0 and mtimes[ids["dir"]] > 0 and mtimes[ids["bin"]] == 0

        assert trashed_path == "/" + CAFE
        assert upload == "/\u00dcn\u00efcode/na\u00efve.md"
        # a lock follows its node to the NFC URL; one whose URL now names the twin is dropped
        assert locks == {
            "kept": quote("/dav/alice/r\u00e9sum\u00e9.pdf"),
            "nfc": quote("/dav/alice/" + CAFE),
        }

        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert sum("already holds: renamed to" in w for w in warnings) == 4, warnings
        assert any("caf\u00e9 (2).txt" in w for w in warnings)
        assert sum("lock" in w and "dropped" in w for w in warnings) == 2, warnings

        db.upgrade()  # at head: nothing to do
        with db.read() as s:
            assert s.scalar(text("SELECT count(*) FROM change WHERE kind = 'moved'")) == 9
    finally:
        db.dispose()


def test_migrated_store_serves_both_spellings(db_url, tmp_path):
    db = Database(db_url)
    upgrade_to(db, "0003")
    db.dispose()
    drive = make_drive(db_url, str(tmp_path / "master.key"))
    try:
        alice = drive.create_account("alice", "x")
        drive.write_file(alice, "/" + CAFE, b"nfc")
        with drive.db.write() as s:  # what a 0003 server stored for a macOS client's PUT
            s.execute(
                text(
                    "INSERT INTO node (user_id, parent_id, name, is_dir, status, mtime, "
                    "created_at) SELECT user_id, parent_id, :n, false, 'ok', 0, 0 FROM node "
                    "WHERE name = :o"
                ),
                {"n": CAFE_NFD, "o": CAFE},
            )
        command_db = Database(db_url)
        try:
            with command_db.engine.begin() as c:  # run 0004 again over the new NFD row
                c.exec_driver_sql("UPDATE alembic_version SET version_num = '0003'")
            command_db.upgrade()
        finally:
            command_db.dispose()
        assert {m.name for m in drive.list_dir(alice, "/")} == {"caf\u00e9 (2).txt", CAFE}
        assert drive.read_bytes(alice, "/" + CAFE_NFD) == b"nfc"
    finally:
        drive.store.close()
        drive.db.dispose()
