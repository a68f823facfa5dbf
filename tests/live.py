"""pytest plugin: a real ``davdrive serve`` subprocess on a free loopback port.

``live_server`` (function scope) has users alice/alice-pw and bob/bob-pw, created through the CLI
(``davdrive init``, then ``user add``) before the first start. ``live_server_factory(**kw)``
starts more (``users=``, ``extra_args=``, ``tls=(cert, key)``, ``create_users=False``: no init
either, so the first ``serve`` creates the store and ``admin``). Servers get SIGTERM, then
SIGKILL, at teardown; the stderr tail of a server is printed when its test failed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

USERS = {"alice": "alice-pw", "bob": "bob-pw"}
START_TIMEOUT = 30.0


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(
    data_dir: Path, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run ``python -m davdrive.cli --data DIR ARGS``; unless ``check`` is False, fail loudly on
    a non-zero exit."""
    proc = subprocess.run(
        [sys.executable, "-m", "davdrive.cli", "--data", str(data_dir), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"davdrive {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


class LiveServer:
    """One ``davdrive serve`` subprocess over its own data directory."""

    def __init__(
        self,
        data_dir: Path,
        *,
        users: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
        tls: tuple[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.users = dict(USERS if users is None else users)
        self.extra_args = tuple(extra_args)
        self.tls = tls
        self.port = free_port()
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.stdout_path = data_dir.parent / f"{data_dir.name}-{self.port}-stdout.log"
        self.stderr_path = data_dir.parent / f"{data_dir.name}-{self.port}-stderr.log"
        self.returncode: int | None = None

    # -- helpers tests use --------------------------------------------------------------------
    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not running"
        return self.proc.pid

    def dav(self, login: str) -> str:
        return f"{self.url}/dav/{login}/"

    def auth(self, login: str) -> tuple[str, str]:
        return (login, self.users[login])

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return run_cli(self.data_dir, *args, input=input)

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    # -- lifecycle ------------------------------------------------------------------------------
    def init(self) -> None:
        """``davdrive init`` on this server's data directory."""
        run_cli(self.data_dir, "init")

    def create_users(self) -> None:
        """``davdrive init``, then ``user add`` for each of ``users``."""
        self.init()
        for login, password in self.users.items():
            run_cli(self.data_dir, "user", "add", login, "--password-stdin", input=password + "\n")

    def start(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "davdrive.cli",
            "--data",
            str(self.data_dir),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.extra_args,
        ]
        if self.tls:
            cmd += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        self.returncode = None
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.proc.returncode}:\n{self.stderr()[-3000:]}"
                )
            try:
                r = requests.get(f"{self.url}/healthz", timeout=2, verify=False)
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready after {START_TIMEOUT}s:\n{self.stderr()[-3000:]}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; return the exit status."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.returncode = self.proc.returncode
        self.proc = None
        return self.returncode

    def restart(self) -> None:
        """Stop and start again on the same port and data directory."""
        self.stop()
        self.start()


@pytest.fixture
def live_server_factory(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """``make(**kw) -> LiveServer`` (started); every server is stopped at teardown."""
    servers: list[LiveServer] = []

    def make(
        *,
        create_users: bool = True,
        start: bool = True,
        data_dir: Path | None = None,
        **kw: Any,
    ) -> LiveServer:
        """``data_dir`` shares another server's data directory (a second process)."""
        data_dir = data_dir or tmp_path_factory.mktemp("live") / "data"
        srv = LiveServer(data_dir, **kw)
        servers.append(srv)
        if create_users:
            srv.create_users()
        if start:
            srv.start()
        return srv

    yield make
    rep = getattr(request.node, "rep_call", None)
    failed = rep is not None and rep.failed
    for srv in servers:
        srv.stop()
        if failed:
            tail = srv.stderr()[-4000:]
            sys.stderr.write(f"\n--- davdrive serve stderr ({srv.url}) ---\n{tail}\n")


@pytest.fixture
def live_server(live_server_factory: Any) -> LiveServer:
    """A started server with alice/alice-pw and bob/bob-pw."""
    return live_server_factory()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Expose each phase's report as ``item.rep_<phase>`` (for the stderr tail on failure)."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
