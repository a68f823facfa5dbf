"""Child process for the crash test: writes versions of /big forever until it is killed."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from davdrive.blockstore.keys import KeyRing
from davdrive.blockstore.store import BlockStore
from davdrive.metadata.db import Database
from davdrive.service.drive import Drive
from davdrive.storage.local import LocalBackend


def content(i: int, size: int) -> bytes:
    """Deterministic pseudo-random content for version i."""
    seed = hashlib.sha256(b"crash %d" % i).digest()
    out = bytearray()
    block = seed * 2048  # 64 KiB
    n = 0
    while len(out) < size:
        out += hashlib.blake2b(block, digest_size=64, key=n.to_bytes(8, "big")).digest() * 1024
        n += 1
    return bytes(out[:size])


def open_drive(data: Path) -> Drive:
    db = Database(f"sqlite:///{data / 'meta.db'}")
    db.upgrade()
    return Drive(
        db, BlockStore(LocalBackend(data / "blocks")), KeyRing.load_or_create(str(data / "key"))
    )


def main() -> None:
    data, size = Path(sys.argv[1]), int(sys.argv[2])
    drive = open_drive(data)
    p = drive.principal("crash")
    i = int((data / "next").read_text()) if (data / "next").exists() else 1
    while True:
        (data / "next").write_text(str(i + 1))
        payload = content(i, size)
        upload = drive.begin_upload(p, "/big")
        for off in range(0, size, 256 << 10):
            upload.write(payload[off : off + (256 << 10)])
            (data / "progress").write_text(f"{i} {off}")
        upload.commit()
        (data / "committed").write_text(str(i))  # at least this one is durable
        i += 1


if __name__ == "__main__":
    main()
