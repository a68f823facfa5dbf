"""A writer killed with SIGKILL at random points leaves a whole old or whole new version."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.service.crash_writer import content, open_drive

SIZE = 24 << 20


@pytest.mark.slow
def test_sigkill_mid_write_leaves_a_complete_version(tmp_path: Path) -> None:
    drive = open_drive(tmp_path)
    p = drive.create_account("crash", "x")
    drive.write_file(p, "/big", content(0, SIZE))
    drive.db.dispose()
    drive.store.close()
    rng = random.Random(1234)
    digests: dict[int, str] = {}

    def digest_of(i: int) -> str:
        if i not in digests:
            digests[i] = hashlib.sha256(content(i, SIZE)).hexdigest()
        return digests[i]

    root = Path(__file__).resolve().parents[2]
    for _round in range(5):
        (tmp_path / "progress").unlink(missing_ok=True)
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.service.crash_writer", str(tmp_path), str(SIZE)],
            cwd=root,
        )
        deadline = time.time() + 60
        while not (tmp_path / "progress").exists():
            assert child.poll() is None, "writer died on its own"
            assert time.time() < deadline
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.5))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        drive = open_drive(tmp_path)
        data = drive.read_bytes(p, "/big")
        digest = hashlib.sha256(data).hexdigest()
        written = int((tmp_path / "next").read_text())  # versions 0 .. written-1 were begun
        marker = tmp_path / "committed"
        mark = marker.read_text().strip() if marker.exists() else ""  # (cut short by the kill)
        committed = int(mark) if mark.isdigit() else 0  # at least this one is durable
        # (a loaded machine may kill several rounds in a row before their first commit)
        candidates = range(written - 1, committed - 1, -1)
        assert any(digest == digest_of(i) for i in candidates), "the file is a mix of versions"
        assert drive.stat(p, "/big").content_hash == digest
        report = drive.fsck()
        assert report.ok, report.summary()
        drive.db.dispose()
        drive.store.close()
