"""A full disk does not stay full (issue 16, item 6), with the whole data directory (metadata
database and blocks) on a small tmpfs: a refused PUT's blocks are reclaimed at once, writes
that cannot be recorded answer 507 (never 500), and purging the trash gives the space back."""

from __future__ import annotations

import os
import shutil
import subprocess

import requests

from tests.conftest import unavailable

MiB = 1 << 20


def _free(path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_a_full_disk_gives_its_space_back(live_server_factory, tmp_path):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        unavailable("mounting a small tmpfs needs root")
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(tiny)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        srv = live_server_factory(data_dir=tiny / "data")
        s = requests.Session()
        s.auth = srv.auth("alice")
        dav, api = srv.dav("alice"), f"{srv.url}/api/v1"
        big = os.urandom(6 * MiB)
        assert s.put(dav + "big.bin", data=big, timeout=60).status_code == 201
        free = _free(tiny)
        r = s.put(dav + "huge.bin", data=os.urandom(40 * MiB), timeout=120)
        assert r.status_code == 507
        assert _free(tiny) >= free - 256 * 1024  # the refused PUT's blocks are gone already

        ballast = tiny / "ballast"  # fill what is left, then try metadata-only writes
        with open(ballast, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * MiB)
                    f.flush()
            except OSError:
                pass
        statuses = {
            "MKCOL": s.request("MKCOL", dav + "newdir", timeout=30).status_code,
            "MOVE": s.request(
                "MOVE", dav + "big.bin", headers={"Destination": dav + "moved.bin"}, timeout=30
            ).status_code,
            "LOCK": s.request(
                "LOCK",
                dav + "big.bin",
                data=b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope>'
                b"<D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>",
                timeout=30,
            ).status_code,
            "PUT": s.put(dav + "small.txt", data=b"x" * 300_000, timeout=30).status_code,
        }
        print("statuses on a full disk:", statuses)
        assert all(code < 500 or code == 507 for code in statuses.values()), statuses
        assert 507 in statuses.values(), statuses
        assert requests.get(f"{srv.url}/healthz", timeout=5).status_code == 200
        ballast.unlink()

        name = "moved.bin" if statuses["MOVE"] < 300 else "big.bin"
        assert s.get(dav + name, timeout=30).content == big
        assert s.delete(dav + name, timeout=30).status_code == 204
        before = _free(tiny)
        r = s.delete(f"{api}/trash", timeout=30)
        assert r.status_code == 200, r.text
        assert _free(tiny) >= before + 5 * MiB  # purged blocks are freed at once
        srv.stop()
    finally:
        subprocess.run(["umount", "-l", str(tiny)], check=False)
