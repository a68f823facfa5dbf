"""``davdrive prune [--dry-run]`` and ``davdrive user retention`` over a real store, with its
metadata in SQLite and in PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from davdrive.app import build_app
from davdrive.cli import main
from davdrive.config import load_config


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path) -> Path:
    """A config file for a new store (``davdrive init``); its retention section may be
    appended by a test."""
    cfg = tmp_path / "davdrive.yaml"
    lines = [f"data_dir: {tmp_path / 'data'}"]
    if request.param == "postgresql":
        lines.append(f"database_url: {request.getfixturevalue('pg_url')}")
    cfg.write_text("\n".join(lines) + "\n")
    assert "created a davdrive store" in run(cfg, "init").output
    return cfg


def run(cfg: Path, *args: str, code: int = 0):
    result = CliRunner().invoke(main, ["--config", str(cfg), *args])
    assert result.exit_code == code, (result.output, result.exception)
    return result


def fill(cfg: Path, login: str, overwrites: int, size: int = 700_000) -> list[bytes]:
    """An account with a 1 MB quota whose /big.bin was written ``overwrites`` times."""
    app = build_app(load_config(cfg), create=False)
    try:
        p = app.accounts.add_user(login, "pw", quota=1_000_000)
        bodies = [os.urandom(size) for _ in range(overwrites)]
        for body in bodies:
            app.drive.write_file(p, "/big.bin", body)
        return bodies
    finally:
        app.close()


def versions(cfg: Path, login: str) -> int:
    app = build_app(load_config(cfg), create=False)
    try:
        return len(app.drive.list_versions(app.drive.principal(login), "/big.bin"))
    finally:
        app.close()


def test_prune_dry_run_then_prune(store):
    """The issue's case: ten overwrites of a 700 kB file with a 1 MB quota."""
    fill(store, "alice", 10)
    fill(store, "bob", 1)

    out = run(store, "prune", "--dry-run").output
    assert "dry run: nothing was changed" in out
    assert "alice: 9 versions dropped (thinned 0, over max_versions 0, over history_share 9)" in out
    assert "history 6.3 MB -> 0 B (cap 500.0 kB), 6.3 MB released for gc" in out
    assert out.count("  drop /big.bin version ") == 9
    assert "bob: 0 versions dropped" in out
    assert versions(store, "alice") == 10

    out = run(store, "prune").output
    assert "dry run" not in out and "  drop " not in out
    assert "alice: 9 versions dropped" in out
    assert "total: 9 versions dropped, 0 trash entries purged, 6.3 MB released for gc" in out
    assert versions(store, "alice") == 1

    out = run(store, "prune").output
    assert "total: 0 versions dropped" in out


def test_retention_from_the_config_and_per_account(store):
    with store.open("a") as fh:
        fh.write("retention:\n  max_versions: 3\n  history_share: 1\n  trash_days: 0\n")
    fill(store, "alice", 6, size=1000)
    fill(store, "bob", 6, size=1000)

    out = run(store, "user", "retention", "alice").output
    assert "max_versions   3 (default)" in out
    out = run(store, "user", "retention", "alice", "--max-versions", "5").output
    assert "max_versions   5 (account)" in out and "history_share  1 (default)" in out

    out = run(store, "prune").output
    assert "alice: 1 versions dropped" in out and "bob: 3 versions dropped" in out
    assert (versions(store, "alice"), versions(store, "bob")) == (5, 3)

    out = run(store, "user", "retention", "alice", "--reset").output
    assert "max_versions   3 (default)" in out
    run(store, "prune")
    assert versions(store, "alice") == 3


def test_bad_settings_are_one_line_errors(store):
    fill(store, "alice", 1, size=10)
    out = run(store, "user", "retention", "alice", "--history-share", "1.5", code=1).output
    assert out.strip() == "Error: retention.history_share must be between 0 and 1, not 1.5"
    out = run(store, "user", "retention", "nobody", "--max-versions", "2", code=1).output
    assert out.strip() == "Error: no user 'nobody'"
    with store.open("a") as fh:
        fh.write("retention:\n  keep_forever: true\n")
    out = run(store, "prune", code=1).output
    assert "unknown retention settings: keep_forever" in out
