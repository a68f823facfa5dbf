"""The ``davdrive`` command line over a real data directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from davdrive import errors
from davdrive.app import build_app
from davdrive.cli import main
from davdrive.config import load_config
from davdrive.service.types import Principal


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data directory holding a store (``davdrive init``)."""
    d = tmp_path / "data"
    assert "created a davdrive store" in run(d, "init").output
    return d


def run(data: Path, *args: str, input: str | None = None, before: bool = True, code: int = 0):
    """Invoke the CLI with ``--data`` before (default) or after the command words."""
    argv = ["--data", str(data), *args] if before else [*args, "--data", str(data)]
    result = CliRunner().invoke(main, argv, input=input)
    assert result.exit_code == code, (result.output, result.exception)
    return result


def open_app(data: Path):
    return build_app(load_config(data_dir=data))


def test_user_lifecycle_with_data_before_and_after(data):
    run(data, "user", "add", "alice", "--password-stdin", input="alice-pw\n")
    run(data, "user", "add", "root", "--admin", "--quota", "1GB", "--password-stdin",
        input="root-pw\n", before=False)  # fmt: skip
    # a prompt without --password-stdin asks twice
    out = run(data, "user", "add", "bob", input="bob-pw\nbob-pw\n").output
    assert "created user bob" in out

    listing = run(data, "user", "list", before=False).output.splitlines()
    rows = {line.split()[0]: line for line in listing[1:]}
    assert sorted(rows) == ["alice", "bob", "root"]
    assert "yes" in rows["root"] and "yes" not in rows["alice"]

    run(data, "user", "passwd", "alice", "--password-stdin", input="new-pw\n", before=False)
    run(data, "user", "quota", "bob", "2MB")
    app = open_app(data)
    try:
        assert app.accounts.authenticate("alice", "new-pw").login == "alice"
        assert app.accounts.authenticate("root", "root-pw").is_admin
        assert app.accounts.authenticate("bob", "bob-pw").login == "bob"
        quotas = {u.login: u.quota for u in app.accounts.list_users()}
        assert quotas["bob"] == 2_000_000 and quotas["root"] == 1_000_000_000
    finally:
        app.close()

    # delete asks unless --yes
    run(data, "user", "delete", "bob", input="n\n", code=1)
    run(data, "user", "delete", "bob", "--yes", before=False)
    listing = run(data, "user", "list").output
    assert "bob" not in listing and "alice" in listing


def test_group_level_and_subcommand_level_options_merge(data, tmp_path):
    other = tmp_path / "other"
    cfg = tmp_path / "davdrive.yaml"
    cfg.write_text(f"data_dir: {other}\n")
    # --config before the command, --data after it: --data wins for the data directory
    CliRunner().invoke(
        main,
        ["--config", str(cfg), "user", "add", "x", "--password-stdin", "--data", str(data)],
        input="pw\n",
    )
    assert (data / "davdrive.db").exists() and not other.exists()
    # and the options also work on the intermediate group
    result = CliRunner().invoke(main, ["user", "--data", str(data), "list"])
    assert result.exit_code == 0 and "x" in result.output


def test_usage_device_fsck_and_key_rotate(data):
    run(data, "user", "add", "alice", "--password-stdin", input="alice-pw\n")
    app = open_app(data)
    try:
        p: Principal = app.drive.principal("alice")
        app.drive.write_file(p, "/hello.txt", b"hello world" * 1000)
        app.drive.write_file(p, "/notes.txt", b"n" * 4000)
        app.drive.write_file(p, "/notes.txt", b"n" * 500)  # 4 kB go to history
        app.drive.write_file(p, "/old.txt", b"x" * 3000)
        app.drive.delete(p, "/old.txt")  # 3 kB in the trash
        old_key = app.keyring.current_id
    finally:
        app.close()

    out = run(data, "usage", "alice").output
    head, row = out.splitlines()
    assert head.split() == ["LOGIN", "CURRENT", "HISTORY", "TRASH", "STORED", "QUOTA", "AVAILABLE"]
    cells = [c.strip() for c in row[24:].split("  ") if c.strip()]
    assert row.split()[0] == "alice" and cells[:3] == ["11.5 kB", "4.0 kB", "3.0 kB"], out
    assert "alice" in run(data, "usage").output

    out = run(data, "device", "add", "alice", "laptop").output
    app_pw = out.split("app password: ")[1].split()[0]
    token = out.split("token: ")[1].split()[0]

    out = run(data, "fsck").output
    assert "missing: 0" in out and "damaged: 0" in out

    out = run(data, "key", "rotate").output
    assert "rewrapped 1 account key" in out
    app = open_app(data)
    try:
        assert app.keyring.current_id != old_key and old_key in app.keyring.ids
        assert app.accounts.authenticate("alice", app_pw).device_id is not None
        assert app.accounts.authenticate_token(token).login == "alice"
        # data written under the old master key still reads after the rewrap
        assert app.drive.read_bytes(p, "/hello.txt") == b"hello world" * 1000
    finally:
        app.close()


def test_fsck_exit_code_on_damage(data):
    run(data, "user", "add", "alice", "--password-stdin", input="pw\n")
    app = open_app(data)
    try:
        app.drive.write_file(app.drive.principal("alice"), "/f.bin", bytes(range(256)) * 4096)
    finally:
        app.close()
    blocks = [f for f in (data / "blocks").rglob("*") if f.is_file()]
    assert blocks
    raw = bytearray(blocks[0].read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    blocks[0].write_bytes(bytes(raw))
    out = run(data, "fsck", code=1).output
    assert "damaged: 1" in out
    # --no-verify only checks presence: the tampered block is present
    run(data, "fsck", "--no-verify")


def test_device_list_and_revoke(data):
    run(data, "user", "add", "alice", "--password-stdin", input="alice-pw\n")
    run(data, "user", "add", "bob", "--password-stdin", input="bob-pw\n")
    out = run(data, "device", "add", "alice", "laptop").output
    laptop_pw = out.split("app password: ")[1].split()[0]
    laptop_token = out.split("token: ")[1].split()[0]
    run(data, "device", "add", "alice", "phone")
    run(data, "device", "add", "bob", "tablet")
    app = open_app(data)
    try:  # the laptop has been seen
        assert app.accounts.authenticate("alice", laptop_pw).device_id is not None
    finally:
        app.close()

    lines = run(data, "device", "list").output.splitlines()
    assert lines[0].split() == ["ID", "LOGIN", "NAME", "CREATED", "LAST", "SEEN", "CURSOR"]
    rows = [line.split() for line in lines[1:]]
    assert [(r[1], r[2]) for r in rows] == [("alice", "laptop"), ("alice", "phone"),
                                            ("bob", "tablet")]  # fmt: skip
    by_name = {r[2]: r for r in rows}
    assert by_name["phone"][-2:] == ["never", "0"]  # never seen, cursor 0
    assert by_name["laptop"][-2] != "never"
    bobs = run(data, "device", "list", "bob").output.splitlines()[1:]
    assert [line.split()[2] for line in bobs] == ["tablet"]

    # by name, then by numeric id
    out = run(data, "device", "revoke", "alice", "laptop").output
    assert out.strip() == f"revoked device {by_name['laptop'][0]} (laptop) of alice"
    out = run(data, "device", "revoke", "alice", by_name["phone"][0], before=False).output
    assert "(phone) of alice" in out
    assert "alice" not in run(data, "device", "list").output.split("\n", 1)[1]
    app = open_app(data)
    try:
        with pytest.raises(errors.DriveError):
            app.accounts.authenticate("alice", laptop_pw)
        with pytest.raises(errors.DriveError):
            app.accounts.authenticate_token(laptop_token)
    finally:
        app.close()

    # another account's device, an unknown device or login: one line, status 1
    result = run(data, "device", "revoke", "alice", "tablet", code=1)
    assert "Traceback" not in result.output and result.output.startswith("Error: ")
    run(data, "device", "revoke", "ghost", "x", code=1)
    run(data, "device", "list", "ghost", code=1)


def _block_files(data: Path) -> set[Path]:
    return {f for f in (data / "blocks").rglob("*") if f.is_file()}


def test_fsck_names_the_files_behind_a_damaged_block(data):
    """Each bad block lists the owner and path of every version using it; versions that are
    not current and files in the trash say so."""
    run(data, "user", "add", "alice", "--password-stdin", input="pw\n")
    shared = bytes(range(256)) * 1024  # 256 KiB: one block, stored once (dedup)
    app = open_app(data)
    try:
        p = app.drive.principal("alice")
        app.drive.mkdir(p, "/docs")
        app.drive.mkdir(p, "/old")
        before = _block_files(data)
        app.drive.write_file(p, "/docs/f.bin", shared)
        (victim,) = _block_files(data) - before
        app.drive.write_file(p, "/docs/f.bin", b"newer content")  # f.bin's first version: old
        app.drive.write_file(p, "/old/g.bin", shared)  # same block
        app.drive.write_file(p, "/docs/ok.bin", b"untouched")
        app.drive.delete(p, "/old")  # g.bin goes to the trash with its folder
        v_f = app.drive.list_versions(p, "/docs/f.bin")[-1].id
    finally:
        app.close()
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))

    out = run(data, "fsck", code=1).output
    lines = out.splitlines()
    assert "damaged: 1" in lines[0]
    (head,) = [line for line in lines if line.startswith("damaged: ")]
    assert victim.name in head and "(block " in head
    files = lines[lines.index(head) + 1 :]
    assert files == [
        f"    alice /docs/f.bin (version {v_f}, not current)",
        files[1],
    ], out
    assert files[1].startswith("    alice /old/g.bin (current version ")
    assert files[1].endswith("; in trash)")
    assert "ok.bin" not in out


def test_errors_are_one_line_without_traceback(data):
    result = CliRunner().invoke(main, ["--data", str(data), "user", "quota", "ghost", "1GB"])
    assert result.exit_code == 1
    assert "no user 'ghost'" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["--data", str(data), "user", "quota", "ghost", "lots"])
    assert result.exit_code == 1 and "not a size" in result.output
    run(data, "user", "add", ".x", "--password-stdin", input="pw\n", code=1)
    run(data, "user", "add", "y", "--password-stdin", input="\n", code=1)


def test_python_dash_m_entry_point(data):
    proc = subprocess.run(
        [sys.executable, "-m", "davdrive.cli", "--data", str(data), "user", "add", "z",
         "--password-stdin"],
        input="z-pw\n", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "davdrive.cli", "user", "add", "z", "--password-stdin",
         "--data", str(data)],
        input="z-pw\n", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["Error: user 'z' exists"]


def test_readme_starts_with_serve_and_test_commands_and_ci_runs_the_latter():
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    blocks = [b.split("```")[0].strip() for b in readme.split("```sh\n")[1:3]]
    serve_cmd = blocks[0]
    assert serve_cmd.endswith("pip install . && davdrive serve") and "venv" in serve_cmd
    test_cmd = blocks[1]
    assert test_cmd.endswith("python -m pytest -n 2") and "litmus rclone cadaver" in test_cmd
    for cmd in (serve_cmd, test_cmd):  # root without sudo (a container) and users with sudo
        assert cmd.startswith("$(command -v sudo) apt-get update && ")
        assert " sudo " not in f" {cmd} ".replace("$(command -v sudo)", "")
    ci = (root / ".ci" / "run").read_text()
    lines = ci.splitlines()
    assert test_cmd in lines and "export CI=true" in ci
    assert "set -euxo pipefail" in ci
    assert "sudo()" not in ci  # no shim: the README's command works as it is
    lint = [lines.index(c) for c in ("ruff check .", "ruff format --check .", "lint-imports")]
    assert max(lint) < lines.index(test_cmd)  # lint before the long test run
    extras = (root / "setup.cfg").read_text().split("[options.extras_require]")[1]
    assert "pytest-xdist" in extras.split("[tool:pytest]")[0]


def test_readme_commands_need_no_sudo_as_root(tmp_path):
    """``$(command -v sudo)`` expands to nothing without sudo (root in a container) and to sudo
    otherwise; checked with a shell whose PATH has no sudo, then a stand-in sudo."""
    import shutil

    probe = "$(command -v sudo) echo ran"
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "echo").symlink_to(shutil.which("echo"))
    sh = shutil.which("sh")
    out = subprocess.run([sh, "-euc", probe], env={"PATH": str(bare)}, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout == "ran\n"
    (bare / "sudo").write_text('#!/bin/sh\nprintf "via sudo: "; exec "$@"\n')
    (bare / "sudo").chmod(0o755)
    out = subprocess.run([sh, "-euc", probe], env={"PATH": str(bare)}, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout == "via sudo: ran\n"
