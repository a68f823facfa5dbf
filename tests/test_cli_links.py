"""``davdrive link list [USER]`` and ``davdrive link revoke ID``: the admin's audit of share
links (issue 10)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from davdrive.app import build_app
from davdrive.cli import main
from davdrive.config import load_config
from davdrive.metadata.schema import Link


def run(data: Path, *args: str, input: str | None = None, before: bool = True, code: int = 0):
    argv = ["--data", str(data), *args] if before else [*args, "--data", str(data)]
    result = CliRunner().invoke(main, argv, input=input)
    assert result.exit_code == code, (result.output, result.exception)
    return result


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A store with alice, bob and carol. alice links /Docs (view, labelled), /Docs/a.txt (edit,
    at most 2 uses, both used) and /Docs (drop, revoked); bob links his /Pics (upload,
    expired); carol has none."""
    d = tmp_path / "data"
    run(d, "init")
    for login in ("alice", "bob", "carol"):
        run(d, "user", "add", login, "--password-stdin", input=f"{login}-pw\n")
    app = build_app(load_config(data_dir=d))
    try:
        drive = app.drive
        alice, bob = drive.principal("alice"), drive.principal("bob")
        drive.mkdir(alice, "/Docs")
        drive.write_file(alice, "/Docs/a.txt", b"a")
        drive.mkdir(bob, "/Pics")
        links = drive.links
        links.create(alice, "/Docs", "view", label="for the team")
        used = links.create(alice, "/Docs/a.txt", "edit", max_uses=2)
        revoked = links.create(alice, "/Docs", "drop")
        expired = links.create(bob, "/Pics", "upload", expires=time.time() + 3600)
        for _ in range(2):
            links.use(links.open(used.token))
        links.revoke(alice, revoked.id)
        with drive.core.db.write() as s:  # the service refuses an expiry in the past
            s.execute(update(Link).where(Link.id == expired.id).values(expires_at=time.time() - 60))
    finally:
        app.close()
    return d


def rows(output: str) -> list[list[str]]:
    lines = output.splitlines()
    assert lines[0].split()[:6] == ["ID", "OWNER", "TYPE", "STATUS", "USES", "PATH"]
    return [line.split() for line in lines[1:]]


def test_link_list_shows_every_link(data):
    out = run(data, "link", "list").output
    assert [r[:6] for r in rows(out)] == [
        ["1", "alice", "view", "active", "0/-", "/Docs"],
        ["2", "alice", "edit", "used-up", "2/2", "/Docs/a.txt"],
        ["3", "alice", "drop", "revoked", "0/-", "/Docs"],
        ["4", "bob", "upload", "expired", "0/-", "/Pics"],
    ]
    assert out.splitlines()[1].endswith("/Docs  for the team")
    # no token is printed (an audit should not hand out working links)
    assert "/s/" not in out


def test_link_list_of_one_user(data):
    alice = rows(run(data, "link", "list", "alice").output)
    assert [r[0] for r in alice] == ["1", "2", "3"]
    bob = rows(run(data, "link", "list", "bob", before=False).output)
    assert [(r[0], r[1]) for r in bob] == [("4", "bob")]
    assert rows(run(data, "link", "list", "carol").output) == []
    assert rows(run(data, "link", "list", "ALICE").output)[0][:2] == ["1", "alice"]


def test_link_list_unknown_user_is_one_line_error(data):
    result = run(data, "link", "list", "nobody", code=1)
    assert "no user 'nobody'" in result.output and "Traceback" not in result.output


def test_link_revoke(data):
    result = run(data, "link", "revoke", "1")
    assert result.output.strip() == "revoked link 1"
    assert rows(run(data, "link", "list").output)[0][:4] == ["1", "alice", "view", "revoked"]
    app = build_app(load_config(data_dir=data))
    try:
        (first,) = [i for i in app.drive.links.list_all("alice") if i.id == 1]
        assert first.revoked is not None and not first.active
        with pytest.raises(Exception, match="no such link"):
            app.drive.links.open(first.token)
    finally:
        app.close()
    # the others are untouched
    assert [r[3] for r in rows(run(data, "link", "list").output)] == [
        "revoked",
        "used-up",
        "revoked",
        "expired",
    ]


def test_link_revoke_unknown_id_is_one_line_error(data):
    for bad in ("99", "0", str(10**30)):
        result = run(data, "link", "revoke", bad, code=1)
        assert result.output.strip() == f"Error: no link {bad}", result.output
    result = run(data, "link", "revoke", "abc", code=2)  # not an id: a usage error
    assert "Traceback" not in result.output


def test_link_list_on_a_store_without_links(tmp_path):
    d = tmp_path / "empty"
    run(d, "init")
    assert rows(run(d, "link", "list").output) == []


def test_link_commands_refuse_a_directory_without_a_store(tmp_path):
    run(tmp_path / "nothing", "link", "list", code=2)
    run(tmp_path / "nothing", "link", "revoke", "1", code=2)
