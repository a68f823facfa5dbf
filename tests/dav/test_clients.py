"""Real WebDAV clients against a real server: webdavclient3, rclone, cadaver."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest
import requests

from tests.conftest import require_tool

NAMES = ["plain.txt", "with space.txt", "ünïcödé ✓.bin", "hash#pct%amp&plus+.dat", "日本語.md"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_tree(root: Path) -> dict[str, str]:
    """A small tree with awkward names; returns relative path -> sha256."""
    files = {}
    for i, name in enumerate(NAMES):
        for sub in ("", "sub dir #1/", "sub dir #1/ñested/"):
            data = os.urandom(1000 * (i + 1)) + name.encode()
            path = root / sub / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            files[f"{sub}{name}"] = sha(data)
    big = os.urandom(5 << 20)
    (root / "big.bin").write_bytes(big)
    files["big.bin"] = sha(big)
    return files


# -- webdavclient3 ------------------------------------------------------------------------------
def test_webdavclient3_round_trip(any_server, tmp_path):
    from webdav3.client import Client

    client = Client(
        {
            "webdav_hostname": any_server.dav("alice"),
            "webdav_login": "alice",
            "webdav_password": "alice-pw",
        }
    )
    local = tmp_path / "up.bin"
    data = os.urandom(3 << 20)
    local.write_bytes(data)
    client.mkdir("docs")
    client.upload_sync(remote_path="docs/up.bin", local_path=str(local))
    assert client.check("docs/up.bin")
    assert "up.bin" in client.list("docs")
    assert int(client.info("docs/up.bin")["size"]) == len(data)
    client.copy(remote_path_from="docs/up.bin", remote_path_to="docs/copy.bin")
    client.move(remote_path_from="docs/copy.bin", remote_path_to="moved.bin")
    out = tmp_path / "down.bin"
    client.download_sync(remote_path="moved.bin", local_path=str(out))
    assert sha(out.read_bytes()) == sha(data)
    assert "copy.bin" not in client.list("docs")
    client.clean("docs")
    assert not client.check("docs")
    assert client.check("moved.bin")


# -- rclone -------------------------------------------------------------------------------------
def rclone_env(server, tmp_path: Path, vendor: str) -> dict[str, str]:
    rclone = require_tool("rclone")
    obscured = subprocess.run(
        [rclone, "obscure", "alice-pw"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return {
        **os.environ,
        "RCLONE_CONFIG": str(tmp_path / "rclone.conf"),
        "RCLONE_CONFIG_DD_TYPE": "webdav",
        "RCLONE_CONFIG_DD_URL": server.dav("alice"),
        "RCLONE_CONFIG_DD_VENDOR": vendor,
        "RCLONE_CONFIG_DD_USER": "alice",
        "RCLONE_CONFIG_DD_PASS": obscured,
    }


def rclone_run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(["rclone", *args], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize("vendor", ["owncloud", "other"])
def test_rclone_copy_check_sync(any_server, tmp_path, vendor):
    env = rclone_env(any_server, tmp_path, vendor)
    src = tmp_path / "src"
    files = make_tree(src)
    rclone_run(env, "copy", str(src), "dd:tree")
    rclone_run(env, "check", "--download", str(src), "dd:tree")
    listing = json.loads(rclone_run(env, "lsjson", "-R", "--files-only", "dd:tree").stdout)
    assert {e["Path"] for e in listing} == set(files)
    if vendor == "owncloud":  # X-OC-Mtime: modification times survive the upload
        local = {
            str(p.relative_to(src)): int(p.stat().st_mtime) for p in src.rglob("*") if p.is_file()
        }
        from datetime import datetime

        for entry in listing:
            remote = int(datetime.fromisoformat(entry["ModTime"]).timestamp())
            assert remote == local[entry["Path"]], entry
    # Change the tree and sync: one file edited, one deleted, one added.
    (src / NAMES[0]).write_bytes(b"edited")
    (src / "sub dir #1" / NAMES[1]).unlink()
    (src / "added +.txt").write_bytes(b"new")
    rclone_run(env, "sync", str(src), "dd:tree")
    rclone_run(env, "check", "--download", str(src), "dd:tree")
    http = requests.Session()
    http.auth = any_server.auth("alice")
    base = any_server.dav("alice") + "tree/"
    assert http.get(base + quote(NAMES[0])).content == b"edited"
    assert http.head(base + quote(f"sub dir #1/{NAMES[1]}")).status_code == 404
    out = tmp_path / "back"
    rclone_run(env, "copy", "dd:tree", str(out))
    back = {str(p.relative_to(out)): sha(p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    now = {str(p.relative_to(src)): sha(p.read_bytes()) for p in src.rglob("*") if p.is_file()}
    assert back == now


# -- cadaver ------------------------------------------------------------------------------------
def test_cadaver_scripted_session(any_server, tmp_path):
    cadaver = require_tool("cadaver")
    home = tmp_path / "home"
    home.mkdir()
    host = urlparse(any_server.url).hostname
    netrc = home / ".netrc"
    netrc.write_text(f"machine {host}\nlogin alice\npassword alice-pw\n")
    netrc.chmod(0o600)
    data = os.urandom(200_000)
    (tmp_path / "local.bin").write_bytes(data)
    script = "\n".join(
        [
            "mkcol stuff",
            "put local.bin stuff/remote.bin",
            "copy stuff/remote.bin stuff/copy.bin",
            "move stuff/copy.bin renamed.bin",
            "propset renamed.bin color blue",
            "propget renamed.bin color",
            "lock renamed.bin",
            "unlock renamed.bin",
            "ls stuff",
            "get renamed.bin fetched.bin",
            "delete stuff/remote.bin",
            "rmcol stuff",
            "quit",
            "",
        ]
    )
    proc = subprocess.run(
        [cadaver, any_server.dav("alice")],
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "HOME": str(home)},
    )
    out = proc.stdout + proc.stderr
    assert "failed" not in out.lower(), out
    assert "blue" in out, out
    assert (tmp_path / "fetched.bin").read_bytes() == data
    http = requests.Session()
    http.auth = any_server.auth("alice")
    assert http.head(any_server.dav("alice") + "stuff/").status_code == 404
    assert http.get(any_server.dav("alice") + "renamed.bin").content == data
