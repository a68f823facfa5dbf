"""A real davfs2 mount for tests (root, /dev/fuse and mount.davfs needed; skipped otherwise,
a failure under CI=true)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import unavailable


def davfs_mount(url: str, user: str, password: str, tmp_path: Path, name: str = "mnt") -> Path:
    """Mount ``url`` with these credentials at ``tmp_path/name``; returns the mount point."""
    if os.geteuid() != 0 or not shutil.which("mount.davfs") or not os.path.exists("/dev/fuse"):
        unavailable("a davfs2 mount needs root, /dev/fuse and mount.davfs (apt install davfs2)")
    point = tmp_path / name
    point.mkdir()
    secrets = tmp_path / f"{name}.secrets"
    secrets.write_text(f'{url} {user} "{password}"\n')
    secrets.chmod(0o600)
    conf = tmp_path / f"{name}.davfs2.conf"
    conf.write_text(f"secrets {secrets}\ndelay_upload 0\nuse_locks 1\n")
    proc = subprocess.run(
        ["mount.davfs", "-o", f"conf={conf}", url, str(point)],
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"mount.davfs failed: {proc.stderr}"
    return point


def davfs_umount(point: Path) -> None:
    subprocess.run(["umount", str(point)], timeout=120, capture_output=True)
