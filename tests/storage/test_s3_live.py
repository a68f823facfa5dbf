"""A whole ``davdrive serve`` on the S3 backend: a file stored and read back over WebDAV, its
blocks in the SeaweedFS bucket."""

from __future__ import annotations

import os
import re

import requests


def test_server_keeps_its_blocks_in_the_bucket(
    s3_env, s3_prefix, tmp_path, monkeypatch, live_server_factory
):
    config = tmp_path / "davdrive.yaml"
    config.write_text(f"blocks_url: {s3_env.url(s3_prefix)}\n")
    monkeypatch.setenv("DAVDRIVE_CONFIG", str(config))  # init, user add and serve all read it
    srv = live_server_factory()

    data = os.urandom(600 << 10)  # above inline_max: stored as blocks, not in the database
    url = srv.dav("alice") + "big.bin"
    r = requests.put(url, data=data, auth=srv.auth("alice"), timeout=30)
    assert r.status_code in (201, 204), r.text
    r = requests.get(url, auth=srv.auth("alice"), timeout=30)
    assert r.status_code == 200 and r.content == data

    stored = s3_env.keys(s3_prefix)
    assert stored, "no block reached the bucket"
    assert all(re.fullmatch(r"[0-9a-f]{64}", k) for k in stored)
    # random data does not compress: the blocks hold the file plus per-block headers
    assert len(data) <= sum(stored.values()) < len(data) + 1024 * len(stored)
    assert not (srv.data_dir / "blocks").exists()  # nothing went to the local default

    # a second file with the same content is deduplicated: no new object
    r = requests.put(srv.dav("alice") + "copy.bin", data=data, auth=srv.auth("alice"), timeout=30)
    assert r.status_code in (201, 204), r.text
    assert s3_env.keys(s3_prefix) == stored


def test_store_down_at_start_is_one_clear_line(s3_env, tmp_path, monkeypatch):
    from tests.live import free_port, run_cli

    dead = f"http://127.0.0.1:{free_port()}"
    config = tmp_path / "davdrive.yaml"
    config.write_text(f"blocks_url: s3://{s3_env.bucket}/p?endpoint={dead}&timeout=2\n")
    monkeypatch.setenv("DAVDRIVE_CONFIG", str(config))
    proc = run_cli(tmp_path / "data", "init", check=False)
    assert proc.returncode != 0
    assert dead in proc.stderr and "Traceback" not in proc.stderr
    # nothing half-made: no schema, no master key (a later init, with the store up, creates
    # the store instead of finding one that never reached its blocks)
    assert not (tmp_path / "data" / "davdrive.db").exists()
    assert not (tmp_path / "data" / "master.key").exists()
    again = run_cli(tmp_path / "data", "user", "list", check=False)
    assert again.returncode == 2 and "no davdrive store" in again.stderr
