"""``davdrive share list [USER]``: the admin's audit of user shares (issue 10)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from davdrive.app import build_app
from davdrive.cli import main
from davdrive.config import load_config


def run(data: Path, *args: str, input: str | None = None, before: bool = True, code: int = 0):
    argv = ["--data", str(data), *args] if before else [*args, "--data", str(data)]
    result = CliRunner().invoke(main, argv, input=input)
    assert result.exit_code == code, (result.output, result.exception)
    return result


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A store with alice, bob, carol and dave; alice shares /Docs (read-write) with bob,
    /Docs/a.txt (read) with carol; carol, who has a /Docs of her own, shares it with bob."""
    d = tmp_path / "data"
    run(d, "init")
    for login in ("alice", "bob", "carol", "dave"):
        run(d, "user", "add", login, "--password-stdin", input=f"{login}-pw\n")
    app = build_app(load_config(data_dir=d))
    try:
        drive = app.drive
        alice, carol = drive.principal("alice"), drive.principal("carol")
        drive.mkdir(alice, "/Docs")
        drive.write_file(alice, "/Docs/a.txt", b"a")
        drive.mkdir(carol, "/Docs")
        drive.shares.create(alice, "/Docs", "bob", 3)
        drive.shares.create(alice, "/Docs/a.txt", "carol", 1)
        drive.shares.create(carol, "/Docs", "bob", 15)
    finally:
        app.close()
    return d


def rows(output: str) -> list[list[str]]:
    lines = output.splitlines()
    assert lines[0].split()[:4] == ["ID", "OWNER", "RECIPIENT", "PERMISSIONS"]
    return [line.split() for line in lines[1:]]


def test_share_list_shows_every_share(data):
    got = rows(run(data, "share", "list").output)
    assert [r[:4] for r in got] == [
        ["1", "alice", "bob", "read,write"],
        ["2", "alice", "carol", "read"],
        ["3", "carol", "bob", "read,write,create,delete"],
    ]
    out = run(data, "share", "list").output
    assert "/Docs -> /Docs" in out.splitlines()[1]
    assert "/Docs/a.txt -> /a.txt" in out.splitlines()[2]
    # bob had a mount named Docs already: the second one is suffixed
    assert out.splitlines()[3].endswith("/Docs -> /Docs (2)")


def test_share_list_of_one_user_gave_or_received(data):
    bob = rows(run(data, "share", "list", "bob").output)
    assert [(r[0], r[1], r[2]) for r in bob] == [("1", "alice", "bob"), ("3", "carol", "bob")]
    carol = rows(run(data, "share", "list", "carol", before=False).output)
    assert [r[0] for r in carol] == ["2", "3"]
    assert rows(run(data, "share", "list", "dave").output) == []


def test_share_list_unknown_user_is_one_line_error(data):
    result = run(data, "share", "list", "nobody", code=1)
    assert "no user 'nobody'" in result.output and "Traceback" not in result.output


def test_share_list_on_a_store_without_shares(tmp_path):
    d = tmp_path / "empty"
    run(d, "init")
    out = run(d, "share", "list").output
    assert rows(out) == []


def test_share_list_refuses_a_directory_without_a_store(tmp_path):
    run(tmp_path / "nothing", "share", "list", code=2)
