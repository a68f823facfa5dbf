"""Local-directory backend: sharded folders, write to temp, fsync, rename, fsync the folder."""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from davdrive.errors import InsufficientStorage, NotFound
from davdrive.storage.base import BlockBackend, ObjectInfo, check_key


class LocalBackend(BlockBackend):
    """Objects live at ``root/ab/cd/<key>``; a crash leaves at worst a ``.tmp`` file."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key[2:4] / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        folder = path.parent
        created = not folder.exists()
        top_created = created and not folder.parent.exists()
        if created:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = folder / f".{key}.{uuid.uuid4().hex}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            _fsync_dir(folder)
            if created:  # the new folder's entry lives in its parent; the root only changes
                _fsync_dir(folder.parent)  # when the top-level shard is new too
                if top_created:
                    _fsync_dir(folder.parent.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise InsufficientStorage("block storage is full") from exc
            raise

    def get(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise NotFound(f"object {key} not found") from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def list(self) -> Iterator[ObjectInfo]:
        for top in sorted(self.root.iterdir()):
            if not top.is_dir():
                continue
            for mid in sorted(top.iterdir()):
                if not mid.is_dir():
                    continue
                for entry in os.scandir(mid):
                    if entry.name.startswith(".") or not entry.is_file():
                        continue
                    st = entry.stat()
                    yield ObjectInfo(entry.name, st.st_size, st.st_mtime)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
