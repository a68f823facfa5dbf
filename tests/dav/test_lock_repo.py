"""LockRepo: the SQL lock storage behind WsgiDAV's LockManager (SQLite and PostgreSQL)."""

from __future__ import annotations

import time

import pytest

from davdrive.metadata.db import Database
from davdrive.service.locks import MAX_TIMEOUT, LockRepo


@pytest.fixture
def repo(db_url):
    db = Database(db_url)
    db.upgrade()
    yield LockRepo(db)
    db.dispose()


def new_lock(**kw):
    lock = {
        "type": "write",
        "scope": "exclusive",
        "depth": "infinity",
        "owner": b"<owner xmlns='DAV:'>me</owner>",
        "principal": "alice",
        "timeout": 600,
    }
    lock.update(kw)
    return lock


def test_create_get_refresh_delete(repo):
    lock = repo.create("/dav/alice/a.txt/", new_lock())
    assert lock["root"] == "/dav/alice/a.txt" and lock["token"].startswith("opaquelocktoken:")
    got = repo.get(lock["token"])
    assert got["owner"] == b"<owner xmlns='DAV:'>me</owner>" and got["principal"] == "alice"
    assert 590 < got["expire"] - time.time() <= 600
    refreshed = repo.refresh(lock["token"], timeout=30)
    assert refreshed["timeout"] == 30 and refreshed["expire"] - time.time() <= 30
    assert repo.delete(lock["token"]) is True
    assert repo.get(lock["token"]) is None and repo.delete(lock["token"]) is False
    with pytest.raises(ValueError):
        repo.refresh(lock["token"], timeout=30)


def test_timeouts_are_capped(repo):
    assert repo.create("/dav/a/x", new_lock(timeout=-1))["timeout"] == MAX_TIMEOUT
    assert repo.create("/dav/a/y", new_lock(timeout=10**9))["timeout"] == MAX_TIMEOUT
    lock = repo.create("/dav/a/z", new_lock(timeout=5))
    assert repo.refresh(lock["token"], timeout=-1)["timeout"] == MAX_TIMEOUT


def test_expired_locks_are_invisible_and_purged(repo):
    lock = repo.create("/dav/alice/old", new_lock(timeout=0.05))
    time.sleep(0.1)
    assert (
        repo.get_lock_list(
            "/dav/alice/old", include_root=True, include_children=True, token_only=True
        )
        == []
    )
    assert repo.get(lock["token"]) is None
    repo.create("/dav/alice/old2", new_lock(timeout=0.05))
    time.sleep(0.1)
    assert repo.cleanup() == 1


def test_prefix_scan_escapes_like_wildcards(repo):
    roots = [
        "/dav/a/100%",
        "/dav/a/100%/x",
        "/dav/a/100x/y",
        "/dav/a/b_c/d",
        "/dav/a/bxc/d",
        "/dav/a/b",
        "/dav/a/bc",
    ]
    tokens = {r: repo.create(r, new_lock(depth="0"))["token"] for r in roots}

    def children(path):
        return sorted(
            lock["root"]
            for lock in repo.get_lock_list(
                path, include_root=False, include_children=True, token_only=False
            )
        )

    assert children("/dav/a/100%") == ["/dav/a/100%/x"]
    assert children("/dav/a/b_c") == ["/dav/a/b_c/d"]
    assert children("/dav/a/b") == []  # "/dav/a/bc" is a sibling, not a child
    assert repo.get_lock_list(
        "/dav/a/b/", include_root=True, include_children=False, token_only=True
    ) == [tokens["/dav/a/b"]]
    assert repo.delete_under("/dav/a/100%") == 2
    assert repo.get(tokens["/dav/a/100x/y"]) is not None
    repo.clear()
    assert repo.get(tokens["/dav/a/b"]) is None


def test_request_snapshot_answers_like_sql(repo):
    """Inside a request snapshot every query answers what SQL would, including locks written
    during the request and locks on ancestors of the home; queries elsewhere still work."""
    a = repo.create("/dav/alice/a", new_lock(depth="0"))["token"]
    repo.create("/dav/bob/b", new_lock(depth="0"))
    on_root = repo.create("/dav", new_lock(depth="0"))["token"]

    def ask(path: str, root: bool, children: bool) -> set[str]:
        got = repo.get_lock_list(path, include_root=root, include_children=children,
                                 token_only=True)  # fmt: skip
        return set(got)

    queries = [("/dav/alice", True, True), ("/dav/alice/a", True, False), ("/dav", True, False),
               ("/", True, False), ("/dav", True, True), ("/dav/bob", False, True)]  # fmt: skip
    expected = {q: ask(*q) for q in queries}
    assert expected[("/dav/alice", True, True)] == {a}
    assert expected[("/dav", True, False)] == {on_root}
    with repo.snapshot("/dav/alice"):
        assert {q: ask(*q) for q in queries} == expected
        c = repo.create("/dav/alice/c", new_lock(depth="0"))["token"]  # a write refreshes it
        assert ask("/dav/alice", False, True) == {a, c}
        repo.delete(a)
        assert ask("/dav/alice", False, True) == {c}
    assert ask("/dav/alice", False, True) == {c}
