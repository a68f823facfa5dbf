"""``davdrive gc [--dry-run] [--grace SECONDS]``: collect unused block rows and orphan objects
now, with a summary of rows and objects removed and bytes freed (issue 12)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete

from davdrive.app import build_app
from davdrive.cli import main
from davdrive.config import load_config
from davdrive.metadata.schema import FileVersion

ORPHAN = "fe" * 32


def run(data: Path, *args: str, code: int = 0, input: str | None = None):
    result = CliRunner().invoke(main, ["--data", str(data), *args], input=input)
    assert result.exit_code == code, (result.output, result.exception)
    return result


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """alice's /a.bin has two versions, the older one dropped (as retention does): its block
    row is unused; the block store also holds an orphan object (a crashed upload's)."""
    d = tmp_path / "data"
    run(d, "init")
    run(d, "user", "add", "alice", "--password-stdin", input="alice-pw\n")
    app = build_app(load_config(data_dir=d))
    try:
        alice = app.drive.principal("alice")
        app.drive.write_file(alice, "/a.bin", os.urandom(100_000))
        app.drive.write_file(alice, "/a.bin", b"second version")
        old = [v.id for v in app.drive.list_versions(alice, "/a.bin") if not v.is_current]
        with app.db.write() as s:
            s.execute(delete(FileVersion).where(FileVersion.id.in_(old)))
        app.store.backend.put(ORPHAN, b"x" * 5000)
    finally:
        app.close()
    return d


def stored(data: Path) -> set[str]:
    app = build_app(load_config(data_dir=data))
    try:
        return {o.key for o in app.store.backend.list()}
    finally:
        app.close()


def counts(output: str) -> tuple[int, int]:
    m = re.search(r"rows removed: (\d+); objects removed: (\d+)", output)
    assert m, output
    return int(m[1]), int(m[2])


def test_dry_run_then_collect_with_grace_zero(data: Path):
    before = stored(data)
    assert ORPHAN in before and len(before) == 2  # the dropped version's object + the orphan

    dry = run(data, "gc", "--dry-run", "--grace", "0").output
    assert counts(dry) == (1, 2)
    assert re.search(r"would free: 10\d\.\d kB", dry), dry  # ~100 kB stored + 5 kB orphan
    assert stored(data) == before, "a dry run removes nothing"

    assert counts(run(data, "gc").output) == (0, 0)  # the default grace: a day
    assert stored(data) == before

    done = run(data, "gc", "--grace", "0").output
    assert counts(done) == (1, 2)
    assert "freed: " in done and "freed: 0 B" not in done
    assert stored(data) == set()
    assert counts(run(data, "gc", "--grace", "0").output) == (0, 0)

    app = build_app(load_config(data_dir=data))
    try:
        assert app.drive.read_bytes(app.drive.principal("alice"), "/a.bin") == b"second version"
        assert app.drive.fsck().ok
    finally:
        app.close()


def test_a_negative_grace_is_refused(data: Path):
    out = run(data, "gc", "--grace", "-5", code=2).output
    assert "--grace" in out
    assert ORPHAN in stored(data)


def test_gc_refuses_a_directory_without_a_store(tmp_path: Path):
    run(tmp_path / "nothing-here", "gc", code=2)
