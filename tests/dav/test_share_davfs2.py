"""A davfs2 mount of a recipient's home shows the share and writes into the owner's folder
(real server, real mount)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from tests.dav.davfs import davfs_mount, davfs_umount


def _wait(check, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(what)


@pytest.mark.slow
def test_a_davfs2_mount_of_the_recipients_home_shows_the_share(live_server, tmp_path: Path):
    api = f"{live_server.url}/api/v1"
    alice = requests.Session()
    alice.auth = live_server.auth("alice")
    assert alice.post(f"{api}/files/create_folder", json={"path": "/Team"}).ok
    up = alice.post(f"{api}/files/upload", params={"path": "/Team/a.txt"}, data=b"from alice")
    assert up.ok
    r = alice.post(f"{api}/shares", json={"path": "/Team", "user": "bob", "permissions": 15})
    assert r.status_code == 201, r.text
    user, password = live_server.auth("bob")
    point = davfs_mount(live_server.dav("bob"), user, password, tmp_path)
    try:
        assert (point / "Team").is_dir()
        assert (point / "Team" / "a.txt").read_bytes() == b"from alice"
        (point / "Team" / "from-bob.txt").write_bytes(b"written on bob's mount")

        def arrived() -> bool:
            got = alice.get(f"{api}/files/download", params={"path": "/Team/from-bob.txt"})
            return got.status_code == 200 and got.content == b"written on bob's mount"

        _wait(arrived, "bob's file never reached alice's folder")
    finally:
        davfs_umount(point)


@pytest.mark.slow
def test_a_davfs2_mount_of_an_edit_link(live_server, tmp_path: Path):
    api = f"{live_server.url}/api/v1"
    alice = requests.Session()
    alice.auth = live_server.auth("alice")
    assert alice.post(f"{api}/files/create_folder", json={"path": "/Pub"}).ok
    assert alice.post(f"{api}/files/upload", params={"path": "/Pub/a.txt"}, data=b"a").ok
    r = alice.post(f"{api}/links", json={"path": "/Pub", "type": "edit", "password": "pw 1"})
    assert r.status_code == 201, r.text
    point = davfs_mount(r.json()["dav_url"], "anyone", "pw 1", tmp_path)
    try:
        assert (point / "a.txt").read_bytes() == b"a"
        (point / "from-link.txt").write_bytes(b"via the link")

        def arrived() -> bool:
            got = alice.get(f"{api}/files/download", params={"path": "/Pub/from-link.txt"})
            return got.status_code == 200 and got.content == b"via the link"

        _wait(arrived, "the file written on the link's mount never reached alice")
    finally:
        davfs_umount(point)
