"""Only ``init`` and ``serve`` create a store; every other command refuses a folder without one
(exit status 2), and a second ``serve`` on a SQLite data directory is refused while the first
runs (issue 9, items 8 and 9)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from davdrive.cli import main
from tests.live import free_port, run_cli

# Every command that must open an existing store (serve and init may create one).
NEEDS_A_STORE = [
    ("user", "add", "x", "--password-stdin"),
    ("user", "list"),
    ("user", "passwd", "x", "--password-stdin"),
    ("user", "quota", "x", "1GB"),
    ("user", "delete", "x", "--yes"),
    ("device", "add", "x", "phone"),
    ("device", "list"),
    ("device", "revoke", "x", "phone"),
    ("usage",),
    ("fsck",),
    ("key", "rotate"),
    ("notify", "--port", "0"),
]


def _invoke(*argv: str, input: str | None = None):
    return CliRunner().invoke(main, list(argv), input=input)


@pytest.mark.parametrize("command", NEEDS_A_STORE, ids=[" ".join(c[:2]) for c in NEEDS_A_STORE])
def test_commands_refuse_a_folder_without_a_store_and_create_nothing(tmp_path, command):
    typo = tmp_path / "davdrive-dta"
    result = _invoke("--data", str(typo), *command, input="pw\n")
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        f"Error: no davdrive store in {typo}; run `davdrive init --data {typo}` "
        "or check --data/--config"
    )
    assert not typo.exists()


def test_a_mistyped_data_dir_beside_a_real_store_is_refused_by_the_real_program(tmp_path):
    run_cli(tmp_path / "data", "init")
    run_cli(tmp_path / "data", "user", "add", "alice", "--password-stdin", input="pw\n")
    proc = run_cli(tmp_path / "date", "user", "list", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"Error: no davdrive store in {tmp_path / 'date'}; run `davdrive init --data "
        f"{tmp_path / 'date'}` or check --data/--config"
    ]
    assert not (tmp_path / "date").exists()
    assert "alice" in run_cli(tmp_path / "data", "user", "list").stdout


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.rglob("*"))
        if f.is_file() and not f.name.endswith(("-shm", "-wal"))
    }


def test_init_creates_a_store_once_and_then_changes_nothing(tmp_path):
    data = tmp_path / "data"
    first = _invoke("--data", str(data), "init")
    assert first.exit_code == 0, first.output
    assert f"created a davdrive store in {data}" in first.output
    assert "master.key" in first.output and "back it up" in first.output
    assert (data / "master.key").stat().st_mode & 0o077 == 0
    assert data.stat().st_mode & 0o077 == 0
    _invoke("--data", str(data), "user", "add", "alice", "--password-stdin", input="pw\n")
    before = _digest(data)
    key_mtime = (data / "master.key").stat().st_mtime_ns

    again = _invoke("init", "--data", str(data))
    assert again.exit_code == 0
    assert again.output.strip() == f"a davdrive store already exists in {data}; nothing changed"
    assert _digest(data) == before
    assert (data / "master.key").stat().st_mtime_ns == key_mtime


def test_postgres_store_lives_in_the_database_plus_the_key_file(tmp_path, pg_url):
    """With PostgreSQL the data directory holds only the key (and local blocks): a second
    directory without the key is refused instead of minting a key that unwraps nothing."""
    cfg = tmp_path / "pg.yaml"
    cfg.write_text(f'database_url: "{pg_url}"\n')
    one, two = tmp_path / "one", tmp_path / "two"
    assert _invoke("--config", str(cfg), "--data", str(one), "user", "list").exit_code == 2
    assert _invoke("--config", str(cfg), "--data", str(one), "init").exit_code == 0
    assert (one / "master.key").exists() and not (one / "davdrive.db").exists()
    added = _invoke("--config", str(cfg), "--data", str(one), "user", "add", "alice",
                    "--password-stdin", input="pw\n")  # fmt: skip
    assert added.exit_code == 0, added.output

    for command in (("user", "list"), ("init",)):
        result = _invoke("--config", str(cfg), "--data", str(two), *command)
        assert result.exit_code == 2, result.output
        assert "holds a davdrive store, but the master key file" in result.output
        assert str(two / "master.key") in result.output
        assert "postgres@" in result.output or "postgresql" in result.output
    assert not (two / "master.key").exists()
    proc = run_cli(two, "--config", str(cfg), "serve", "--port", "0", check=False)
    assert proc.returncode == 2 and "master key file" in proc.stderr
    assert not (two / "master.key").exists()

    # the key copied over (or master_key_file pointed at it) makes the directory usable
    (two).mkdir(exist_ok=True)
    (two / "master.key").write_bytes((one / "master.key").read_bytes())
    os.chmod(two / "master.key", 0o600)
    listed = _invoke("--config", str(cfg), "--data", str(two), "user", "list")
    assert listed.exit_code == 0 and "alice" in listed.output


def _serve(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "davdrive.cli", "--data", str(data), "serve",
           "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited with {proc.returncode}"
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError("server not ready")


def test_a_second_server_on_a_sqlite_data_dir_exits_2_and_admin_commands_still_work(
    live_server, tmp_path
):
    data = live_server.data_dir
    second = subprocess.run(
        [sys.executable, "-m", "davdrive.cli", "--data", str(data), "serve",
         "--host", "127.0.0.1", "--port", str(free_port())],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert second.returncode == 2, second.stderr
    (message,) = [line for line in second.stderr.splitlines() if line.startswith("Error:")]
    assert f"another davdrive serve (pid {live_server.pid}) is running on {data}" in message
    assert "Traceback" not in second.stderr

    # admin commands do not take the lock
    live_server.cli("user", "add", "carol", "--password-stdin", input="carol-pw\n")
    assert "carol" in live_server.cli("user", "list").stdout
    assert "app password:" in live_server.cli("device", "add", "carol", "laptop").stdout
    live_server.cli("user", "quota", "carol", "2GB")
    assert "carol" in live_server.cli("usage").stdout
    assert "missing: 0" in live_server.cli("fsck").stdout
    live_server.cli("key", "rotate")
    r = requests.put(live_server.dav("carol") + "hi.txt", data=b"hi", auth=("carol", "carol-pw"),
                     timeout=10)  # fmt: skip
    assert r.status_code == 201
    assert live_server.stop() == 0


def test_the_lock_goes_with_a_killed_server(tmp_path):
    data = tmp_path / "data"
    run_cli(data, "init")
    port = free_port()
    first = _serve(data, port, tmp_path / "first.log")
    try:
        _wait_ready(f"http://127.0.0.1:{port}", first)
        assert (data / "serve.lock").read_text().strip() == str(first.pid)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        port = free_port()
        again = _serve(data, port, tmp_path / "again.log")
        try:
            _wait_ready(f"http://127.0.0.1:{port}", again)
        finally:
            again.send_signal(signal.SIGTERM)
            assert again.wait(20) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
