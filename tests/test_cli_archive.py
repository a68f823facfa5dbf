"""``davdrive archive [--dry-run] [--user L --path P] [--restore]`` and the ``archive`` job
over a cold directory (``archive.url``): a summary, a dry run that changes nothing, archive now
for one file, clear refusals, and the job's schedule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from davdrive.app import build_app
from davdrive.cli import main
from davdrive.config import load_config
from davdrive.jobs.maintenance import RUNNERS, periods

OLD, NEW = os.urandom(100_000), os.urandom(90_000)


def run(config: Path, *args: str, code: int = 0, input: str | None = None):
    result = CliRunner().invoke(main, ["--config", str(config), *args], input=input)
    assert result.exit_code == code, (result.output, result.exception)
    return result


def cold_keys(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """alice's /a.bin has an old and a current version; the cold tier is a directory and
    after_days 0 (every old version qualifies)."""
    cfg = tmp_path / "davdrive.yaml"
    cfg.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"archive: {{url: 'file://{tmp_path / 'cold'}', after_days: 0}}\n"
    )
    run(cfg, "init")
    run(cfg, "user", "add", "alice", "--password-stdin", input="alice-pw\n")
    app = build_app(load_config(cfg))
    try:
        alice = app.drive.principal("alice")
        app.drive.write_file(alice, "/a.bin", OLD)
        app.drive.write_file(alice, "/a.bin", NEW)
    finally:
        app.close()
    return cfg


def test_archive_dry_run_then_run_then_archive_now(config: Path, tmp_path: Path):
    cold = tmp_path / "cold"
    dry = run(config, "archive", "--dry-run")
    assert "dry run: nothing was changed" in dry.output
    assert "would move 1 blocks" in dry.output and "cold store file:" in dry.output
    assert not cold_keys(cold)

    done = run(config, "archive")
    assert "archive moved 1 blocks" in done.output, done.output
    assert len(cold_keys(cold)) == 1
    assert "archive moved 0 blocks" in run(config, "archive").output  # idempotent

    now = run(config, "archive", "--user", "alice", "--path", "/a.bin")
    assert "archive moved 1 blocks" in now.output  # the current version's block
    assert len(cold_keys(cold)) == 2
    restore = run(config, "archive", "--restore", "--user", "alice", "--path", "/a.bin")
    assert "readable" in restore.output  # a cold directory needs no restore
    app = build_app(load_config(config))
    try:
        alice = app.drive.principal("alice")
        assert app.drive.read_bytes(alice, "/a.bin") == NEW
        old = min(v.id for v in app.drive.list_versions(alice, "/a.bin"))
        assert app.drive.read_bytes(alice, "/a.bin", version_id=old) == OLD
    finally:
        app.close()


def test_archive_refuses_bad_use_clearly(config: Path, tmp_path: Path):
    assert (
        "--user and --path go together" in run(config, "archive", "--user", "alice", code=2).output
    )
    assert "--restore needs" in run(config, "archive", "--restore", code=2).output
    out = run(config, "archive", "--user", "alice", "--path", "/nope.bin", code=1).output
    assert "/nope.bin not found" in out
    plain = tmp_path / "plain.yaml"
    plain.write_text(f"data_dir: {tmp_path / 'data'}\n")
    assert "archive is off" in run(plain, "archive", code=1).output


def test_the_archive_job_is_scheduled_only_with_a_cold_tier(config: Path, tmp_path: Path):
    app = build_app(load_config(config))
    try:
        assert periods(app)["archive"] == 86400.0
        report = RUNNERS["archive"](app)
        assert (report.moved, report.failed) == (1, 0)
    finally:
        app.close()
    app = build_app(load_config(data_dir=tmp_path / "data"))
    try:
        assert periods(app)["archive"] == 0.0
        assert not RUNNERS["archive"](app).enabled  # a no-op when archive is off
    finally:
        app.close()
