"""A whole ``davdrive serve`` on replicated blocks (the S3 store first, a local directory second)
while the S3 store is frozen: files are read from the other copy, writes behave as
``min_copies`` says, and ``davdrive scrub`` puts the owed copies in the bucket afterwards."""

from __future__ import annotations

import os
from pathlib import Path

import requests

from tests.live import run_cli
from tests.storage.conftest import Seaweed, pause, resume


def write_config(path: Path, srv: Seaweed, local: Path, min_copies: int) -> Path:
    path.write_text(
        "blocks_url:\n"
        f"  - {{name: s3, url: '{srv.url('blocks', timeout='2')}'}}\n"
        f"  - {{name: local, url: 'file://{local}'}}\n"
        f"min_copies: {min_copies}\n"
        f"s3: {{access_key_id: {srv.access_key}, secret_access_key: {srv.secret_key}}}\n"
        "inline_max: 0\n"
    )
    return path


def local_keys(local: Path) -> set[str]:
    return {p.name for p in local.rglob("*") if p.is_file() and not p.name.startswith(".")}


def test_one_store_down_reads_and_writes_go_on_and_scrub_catches_up(
    weed, tmp_path, monkeypatch, live_server_factory
):
    local = tmp_path / "local-blocks"
    config = write_config(tmp_path / "davdrive.yaml", weed, local, min_copies=1)
    monkeypatch.setenv("DAVDRIVE_CONFIG", str(config))
    srv = live_server_factory()
    auth = srv.auth("alice")
    before = os.urandom(600 << 10)
    r = requests.put(srv.dav("alice") + "before.bin", data=before, auth=auth, timeout=30)
    assert r.status_code in (201, 204), r.text
    assert local_keys(local) == set(weed.keys("blocks"))

    pause(weed)
    try:
        r = requests.get(srv.dav("alice") + "before.bin", auth=auth, timeout=30)
        assert r.status_code == 200 and r.content == before
        during = os.urandom(900 << 10)
        r = requests.put(srv.dav("alice") + "during.bin", data=during, auth=auth, timeout=30)
        assert r.status_code in (201, 204), r.text
        r = requests.get(
            f"{srv.url}/api/v1/files/download", params={"path": "/during.bin"}, auth=auth
        )
        assert r.status_code == 200 and r.content == during
    finally:
        resume(weed)
    assert not local_keys(local) <= set(weed.keys("blocks"))  # copies are owed

    proc = run_cli(srv.data_dir, "scrub", "--report")
    assert "copies written" in proc.stdout and "damaged copies: 0" in proc.stdout, proc.stdout
    assert local_keys(local) <= set(weed.keys("blocks"))
    r = requests.get(srv.dav("alice") + "during.bin", auth=auth, timeout=30)
    assert r.status_code == 200 and r.content == during


def test_every_copy_required_a_write_is_refused_with_503_and_reads_go_on(
    weed, tmp_path, monkeypatch, live_server_factory
):
    local = tmp_path / "local-blocks"
    config = write_config(tmp_path / "davdrive.yaml", weed, local, min_copies=0)
    monkeypatch.setenv("DAVDRIVE_CONFIG", str(config))
    srv = live_server_factory()
    auth = srv.auth("alice")
    data = os.urandom(300 << 10)
    r = requests.put(srv.dav("alice") + "kept.bin", data=data, auth=auth, timeout=30)
    assert r.status_code in (201, 204), r.text

    pause(weed)
    try:
        r = requests.get(srv.dav("alice") + "kept.bin", auth=auth, timeout=30)
        assert r.status_code == 200 and r.content == data
        r = requests.put(srv.dav("alice") + "new.bin", data=os.urandom(300 << 10), auth=auth)
        assert r.status_code == 503 and r.headers.get("Retry-After"), r.text
        r = requests.post(
            f"{srv.url}/api/v1/files/upload",
            params={"path": "/new.bin", "uploadType": "media"},
            data=os.urandom(300 << 10),
            auth=auth,
        )
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "store_unavailable"
    finally:
        resume(weed)
    r = requests.get(srv.dav("alice") + "new.bin", auth=auth, timeout=30)
    assert r.status_code == 404
