"""Paths deeper than the one-statement chain (lookup.MAX_CHAIN) take the step-by-step walk:
every operation must behave the same there (SQLite and PostgreSQL)."""

from __future__ import annotations

import os

import pytest

from davdrive import errors
from davdrive.service.lookup import MAX_CHAIN


def test_deep_files_write_read_overwrite(drive, alice):
    parts = [f"d{i}" for i in range(MAX_CHAIN + 3)]
    path = ""
    for part in parts:
        path += "/" + part
        drive.mkdir(alice, path)
    small, big = os.urandom(100), os.urandom(200_000)  # inline, and checked before the body
    drive.write_file(alice, path + "/s.bin", small)
    drive.write_file(alice, path + "/b.bin", big)
    assert drive.read_bytes(alice, path + "/s.bin") == small
    assert drive.read_bytes(alice, path + "/b.bin") == big
    info = drive.stat(alice, path + "/b.bin")
    drive.write_file(alice, path + "/b.bin", b"new", expected_etag=info.etag)
    assert drive.read_bytes(alice, path + "/b.bin") == b"new"
    assert len(drive.list_versions(alice, path + "/b.bin")) == 2
    with pytest.raises(errors.PreconditionFailed):
        drive.write_file(alice, path + "/b.bin", b"x", create_only=True)
    with pytest.raises(errors.ParentNotFound):
        drive.write_file(alice, path + "/missing/f", b"x")
    with pytest.raises(errors.IsAFolder):
        drive.begin_upload(alice, path, declared_size=1 << 20)
    parent, node = drive.stat_pair(alice, path + "/s.bin")
    assert parent is not None and parent.is_dir and node is not None and node.size == 100
