"""moto's ThreadedMotoServer: the only available store that emulates Glacier (GET of a GLACIER
object answers 403 InvalidObjectState until a RestoreObject completes). One server per test
module, on a free loopback port, in the test process; each test makes its own bucket.

How long a restore takes is moto's "s3::keyrestore" state machine (None -> IN_PROGRESS ->
RESTORED): by default a restore is done at once. ``restore_takes(s)`` makes the state advance
one step per ``s`` seconds, counted from the object's last write (the CopyObject that archived
it); moto shows ``ongoing-request="true"`` only in the IN_PROGRESS state, so a test waits ``s``
seconds after archiving before its first read.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import unavailable
from tests.live import free_port

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


@dataclass
class Moto:
    """One running moto server (S3 at ``endpoint``)."""

    endpoint: str

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def bucket(self) -> str:
        """A new, empty bucket."""
        name = f"cold-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def url(self, bucket: str, prefix: str = "blocks") -> str:
        return f"s3://{bucket}/{prefix}?endpoint={self.endpoint}&region={REGION}&timeout=10"

    def objects(self, bucket: str, prefix: str = "blocks") -> dict[str, dict[str, Any]]:
        """Block objects under ``prefix`` -> their HEAD (StorageClass, Restore, ...)."""
        c = self.client()
        out = {}
        for item in c.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", []):
            name = item["Key"].rsplit("/", 1)[-1]
            if not name.startswith("."):
                out[name] = c.head_object(Bucket=bucket, Key=item["Key"])
        return out

    @staticmethod
    def restore_takes(seconds: float) -> None:
        from moto.moto_api import state_manager

        state_manager.set_transition("s3::keyrestore", {"progression": "time", "seconds": seconds})

    @staticmethod
    def restore_at_once() -> None:
        from moto.moto_api import state_manager

        state_manager.unset_transition("s3::keyrestore")


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[Moto]:
    """A moto S3 server for this module (missing moto: skip, or fail under CI=true)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        unavailable("moto is not installed (pip install 'moto[server]>=5')")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield Moto(f"http://127.0.0.1:{port}")
    finally:
        Moto.restore_at_once()
        server.stop()
