"""One conformance suite that every block backend must pass (restic's backend tests)."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

import pytest

from davdrive.errors import InsufficientStorage, NotFound
from davdrive.storage.base import BlockBackend
from davdrive.storage.local import LocalBackend
from davdrive.storage.memory import MemoryBackend
from davdrive.storage.registry import open_backend
from davdrive.storage.replicated import ReplicatedBackend

KEY_A = "ab" * 32
KEY_B = "cd" * 32


def _s3(request) -> BlockBackend:
    """SeaweedFS (tests/storage/conftest.py), a prefix per test."""
    from davdrive.storage.s3 import S3Backend

    store = request.getfixturevalue("seaweed")
    # S3 writes are create-if-absent (keys are content-addressed); an existing object older
    # than refresh_after is rewritten: 0 makes every second put a replacement, the rule
    # this suite checks (the default is covered in test_s3.py).
    return S3Backend(
        store.bucket,
        request.getfixturevalue("s3_prefix"),
        endpoint=store.endpoint,
        access_key=store.access_key,
        secret_key=store.secret_key,
        refresh_after=0,
    )


@pytest.fixture(params=["local", "memory", "s3", "replicated-memory+memory", "replicated-local+s3"])
def backend(request, tmp_path) -> Iterator[BlockBackend]:
    if request.param == "local":
        b: BlockBackend = LocalBackend(tmp_path / "blocks")
    elif request.param == "s3":
        b = _s3(request)
    elif request.param == "replicated-memory+memory":
        b = ReplicatedBackend([("one", MemoryBackend()), ("two", MemoryBackend())])
    elif request.param == "replicated-local+s3":
        b = ReplicatedBackend(
            [("local", LocalBackend(tmp_path / "blocks")), ("s3", lambda: _s3(request))]
        )
    else:
        b = MemoryBackend()
    yield b
    b.close()


def test_put_get_roundtrip(backend):
    backend.put(KEY_A, b"hello")
    assert backend.get(KEY_A) == b"hello"
    assert backend.exists(KEY_A)
    assert not backend.exists(KEY_B)


def test_missing_object_is_not_found(backend):
    with pytest.raises(NotFound):
        backend.get(KEY_B)


def test_put_again_replaces(backend):
    backend.put(KEY_A, b"one")
    backend.put(KEY_A, b"two")
    assert backend.get(KEY_A) == b"two"


def test_delete_is_idempotent(backend):
    backend.put(KEY_A, b"x")
    backend.delete(KEY_A)
    backend.delete(KEY_A)
    assert not backend.exists(KEY_A)


def test_list_reports_keys_and_sizes(backend):
    backend.put(KEY_A, b"12345")
    backend.put(KEY_B, b"")
    got = {o.key: o.size for o in backend.list()}
    assert got == {KEY_A: 5, KEY_B: 0}


@pytest.mark.parametrize("key", ["", "../etc/passwd", "AB" * 32, "zz", "a/b", "ab\0cd"])
def test_hostile_keys_are_refused(backend, key):
    with pytest.raises(ValueError):
        backend.put(key, b"x")


def test_every_copy_holds_the_object(backend):
    backend.put(KEY_A, b"copy")
    for _name, store in backend.replicas():
        assert store.get(KEY_A) == b"copy"
    assert list(backend.copies(KEY_A))[0] == b"copy"
    backend.delete(KEY_A)
    for _name, store in backend.replicas():
        assert not store.exists(KEY_A)
    with pytest.raises(NotFound):
        list(backend.copies(KEY_A))


def test_large_object(backend):
    data = os.urandom(5 << 20)
    backend.put(KEY_A, data)
    assert backend.get(KEY_A) == data


def test_local_layout_is_sharded_and_private(tmp_path):
    b = LocalBackend(tmp_path / "blocks")
    b.put(KEY_A, b"x")
    path = tmp_path / "blocks" / KEY_A[:2] / KEY_A[2:4] / KEY_A
    assert path.read_bytes() == b"x"
    assert path.stat().st_mode & 0o077 == 0
    assert not [p for p in (tmp_path / "blocks").rglob("*.tmp")]
    # the top-level shard folders exist from the start, so a put never changes the root
    tops = sorted(p.name for p in (tmp_path / "blocks").iterdir())
    assert tops == [f"{i:02x}" for i in range(256)]
    assert all((tmp_path / "blocks" / t).stat().st_mode & 0o077 == 0 for t in tops)


def test_local_full_disk_is_insufficient_storage_and_leaves_nothing(tmp_path, monkeypatch):
    b = LocalBackend(tmp_path / "blocks")
    b.put(KEY_A, b"old")

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(InsufficientStorage):
        b.put(KEY_A, b"new")
    monkeypatch.undo()
    assert b.get(KEY_A) == b"old"
    assert not [p for p in (tmp_path / "blocks").rglob("*.tmp")]


def test_open_backend_urls(tmp_path):
    assert isinstance(open_backend(f"file://{tmp_path}/b"), LocalBackend)
    assert isinstance(open_backend("memory://"), MemoryBackend)
    with pytest.raises(ValueError):
        open_backend("ftp://x")
