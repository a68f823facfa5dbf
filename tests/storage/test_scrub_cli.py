"""``davdrive scrub`` on the embedded default (one local store: it reports, it cannot repair) and
on two local replicas (it repairs from the good copy)."""

from __future__ import annotations

import os
from pathlib import Path

from davdrive.app import build_app
from davdrive.config import load_config
from tests.live import run_cli


def blocks(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]


def flip(path: Path) -> None:
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x40
    path.write_bytes(bytes(blob))


def write_file(data_dir: Path, config: Path | None = None) -> bytes:
    app = build_app(load_config(config, data_dir=data_dir, inline_max=0))
    try:
        p = app.drive.create_account("alice", "x")
        body = os.urandom(200 << 10)  # one block (below the chunker's minimum)
        app.drive.write_file(p, "/f.bin", body)
        return body
    finally:
        app.close()


def test_scrub_reports_a_damaged_block_of_a_single_store(tmp_path):
    data = tmp_path / "data"
    write_file(data)
    ok = run_cli(data, "scrub", "--rate", "0")
    assert "damaged copies: 0" in ok.stdout and "in 1 store(s)" in ok.stdout
    assert "verifying" in ok.stderr  # the progress bar (only its label when not a terminal)

    (victim,) = blocks(data / "blocks")
    flip(victim)
    bad = run_cli(data, "scrub", "--report", check=False)
    assert bad.returncode == 1
    assert f"damaged: {victim.name}" in bad.stdout and "not repaired" in bad.stdout
    assert f"no good copy: {victim.name}" in bad.stdout and "alice /f.bin" in bad.stdout


def test_scrub_repairs_a_replica_and_dry_run_does_not(tmp_path):
    data = tmp_path / "data"
    config = tmp_path / "davdrive.yaml"
    config.write_text(
        f"blocks_url: ['file://{tmp_path}/one', 'file://{tmp_path}/two']\nscrub: {{rate: 0}}\n"
    )
    write_file(data, config)
    (victim,) = blocks(tmp_path / "two")
    good = (tmp_path / "one" / victim.relative_to(tmp_path / "two")).read_bytes()
    flip(victim)

    dry = run_cli(data, "--config", str(config), "scrub", "--dry-run", check=False)
    assert dry.returncode == 1 and "not repaired" in dry.stdout
    assert victim.read_bytes() != good

    fixed = run_cli(data, "--config", str(config), "scrub")
    assert "repaired from a good copy" in fixed.stdout and "repaired: 1" in fixed.stdout
    assert victim.read_bytes() == good
