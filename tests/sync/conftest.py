"""Fixtures for the sync client: a real server (tests/live.py) and client *processes*."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

CLIENT = [sys.executable, "-m", "davdrive_sync.cli"]


def app_password(server, login: str, device: str) -> str:
    out = server.cli("device", "add", login, device).stdout
    return next(line.split(": ", 1)[1] for line in out.splitlines() if "app password" in line)


class Device:
    """One client folder, driven through ``python -m davdrive_sync.cli``."""

    def __init__(
        self, server, root: Path, name: str, login: str = "alice", url: str | None = None
    ) -> None:
        self.server, self.root, self.name, self.login = server, root, name, login
        self.url = url or server.url  # e.g. a counting proxy in front of the server

    def init(self, *extra: str) -> subprocess.CompletedProcess:
        pw = app_password(self.server, self.login, self.name)
        return self.cli(
            "init",
            str(self.root),
            self.url,
            "--user",
            self.login,
            "--device",
            self.name,
            "--password-stdin",
            *extra,
            input=pw + "\n",
        )

    def cli(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.run(
            [*CLIENT, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"davdrive-sync {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
            )
        return proc

    def once(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.cli("once", str(self.root), *extra, check=check)

    def spawn_once(self) -> subprocess.Popen:
        return subprocess.Popen(
            [*CLIENT, "once", str(self.root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def path(self, rel: str) -> Path:
        return self.root / rel

    def write(self, rel: str, data: bytes | str) -> None:
        p = self.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)

    def tree(self) -> dict[str, bytes | None]:
        """rel → content (None for folders), without the client's own folder."""
        out: dict[str, bytes | None] = {}
        for p in sorted(self.root.rglob("*")):
            rel = p.relative_to(self.root).as_posix()
            if rel.split("/")[0] == ".davdrive-sync":
                continue
            out[rel] = None if p.is_dir() else p.read_bytes()
        return out


def server_tree(server, login: str = "alice") -> dict[str, bytes | None]:
    base = f"{server.url}/api/v1"
    auth = server.auth(login)
    out: dict[str, bytes | None] = {}
    cursor = None
    while True:
        params = {"path": "/", "recursive": "true"}
        if cursor:
            params["cursor"] = cursor
        page = requests.get(f"{base}/files/list", params=params, auth=auth).json()
        for e in page["entries"]:
            rel = e["path"].lstrip("/")
            if e["is_dir"]:
                out[rel] = None
            else:
                r = requests.get(f"{base}/files/download", params={"path": e["path"]}, auth=auth)
                out[rel] = r.content
        if not page["has_more"]:
            return out
        cursor = page["cursor"]


@pytest.fixture
def devices(live_server, tmp_path):
    """``make(name) -> Device`` (initialized) against one live server."""

    def make(name: str, login: str = "alice", url: str | None = None) -> Device:
        d = Device(live_server, tmp_path / name, name, login, url)
        d.init()
        return d

    return make
