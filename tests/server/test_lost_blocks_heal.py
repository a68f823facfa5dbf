"""A lost block can be stored again (issue 16, item 2): a re-upload heals a block whose object
went missing; ``fsck --repair`` marks missing or damaged blocks lost so the next upload stores
them, and names the affected files."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import requests

from tests.live import run_cli

MiB = 1 << 20


def _objects(srv, path: str) -> list[Path]:
    meta = requests.get(
        f"{srv.url}/api/v1/files/metadata", params={"path": path}, auth=srv.auth("alice")
    ).json()
    files = []
    with sqlite3.connect(srv.data_dir / "davdrive.db") as db:
        for block in meta["blocks"]:
            (key,) = db.execute(
                "SELECT object_key FROM block WHERE hash = ?", (block["id"],)
            ).fetchone()
            files.append(srv.data_dir / "blocks" / key[:2] / key[2:4] / key)
    return files


def _put(srv, name: str, data: bytes) -> int:
    return requests.put(srv.dav("alice") + name, data=data, auth=srv.auth("alice")).status_code


def _get(srv, name: str) -> requests.Response:
    return requests.get(srv.dav("alice") + name, auth=srv.auth("alice"))


def test_a_reupload_stores_a_missing_block_again(live_server):
    data = os.urandom(3 * MiB)
    assert _put(live_server, "a.bin", data) == 201
    victim = _objects(live_server, "/a.bin")[0]
    victim.unlink()
    assert _get(live_server, "a.bin").status_code >= 500  # the loss shows, never wrong bytes
    assert _put(live_server, "copy.bin", data) == 201  # same content: dedup must not trust it
    assert victim.exists()
    assert _get(live_server, "a.bin").content == data
    assert _get(live_server, "copy.bin").content == data
    fsck = live_server.cli("fsck")
    assert "missing: 0" in fsck.stdout and "damaged: 0" in fsck.stdout


def test_fsck_repair_marks_damaged_blocks_and_the_next_upload_heals_them(live_server):
    data = os.urandom(2 * MiB)
    assert _put(live_server, "doc.bin", data) == 201
    victim = _objects(live_server, "/doc.bin")[0]
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    report = run_cli(live_server.data_dir, "fsck", "--repair", check=False)
    assert report.returncode == 1
    assert "alice /doc.bin" in report.stdout and "marked lost: 1" in report.stdout
    assert _put(live_server, "doc.bin", data) == 204  # the owner uploads the file again
    assert _get(live_server, "doc.bin").content == data
    assert live_server.cli("fsck").returncode == 0
