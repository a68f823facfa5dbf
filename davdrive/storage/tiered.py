"""The cold tier: a decorator over the hot backend (restic style) that also reaches archived
objects. Which objects are archived is the metadata's business (``block.tier``, moved by
``davdrive.service.archive``); this layer only moves one object and reads it back.

Two kinds, chosen by the config's ``archive`` section (``registry.open_backend``):

- ``ColdStoreBackend`` (``archive.url``): a second backend of any kind (a directory, another S3
  bucket). ``archive`` copies the object there, checks the copy, then deletes the hot one. Reads
  try the hot store first and fall back to the cold one, so an object is readable at every step
  of a move (and after a crash in the middle). Deletes and listings cover both stores: GC's and
  fsck's orphan sweep sees cold objects (a cold object a block row names is referenced, so it
  is never swept). Cold stores must be directly readable (no restore).
- ``StorageClassBackend`` (``archive.storage_class``, one ``s3://`` store): ``archive`` is a
  CopyObject of the object onto itself with the new StorageClass (boto3: obstore has no such
  call). The object keeps its key and bucket: get, delete and list are the hot store's. Classes
  that need a restore before a GET (GLACIER, DEEP_ARCHIVE) are checked with HEAD before a read
  (``restore_state``): a restore is requested (RestoreObject; one in progress is fine) and the
  read refused with ``Archived`` (HTTP 409 + Retry-After) until HEAD shows it done. GLACIER_IR,
  STANDARD_IA and ONEZONE_IA read directly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from davdrive.errors import Archived, NotFound, StoreUnavailable
from davdrive.storage.base import BlockBackend, ObjectInfo, check_key

log = logging.getLogger("davdrive.storage.tiered")

# S3 storage classes an archive may move objects to; the first two need a restore to be read
RESTORE_CLASSES = ("GLACIER", "DEEP_ARCHIVE")
STORAGE_CLASSES = ("STANDARD_IA", "ONEZONE_IA", "GLACIER_IR", *RESTORE_CLASSES)
RESTORE_TIERS = ("Standard", "Bulk", "Expedited")
# Seconds a client is told to wait for a restore, by class and retrieval tier (AWS's typical
# times: GLACIER Expedited 1-5 min, Standard 3-5 h, Bulk 5-12 h; DEEP_ARCHIVE 12 h and 48 h)
_RETRY_AFTER = {
    ("GLACIER", "Expedited"): 300,
    ("GLACIER", "Standard"): 4 * 3600,
    ("GLACIER", "Bulk"): 12 * 3600,
    ("DEEP_ARCHIVE", "Expedited"): 12 * 3600,  # not offered by AWS: it answers as Standard
    ("DEEP_ARCHIVE", "Standard"): 12 * 3600,
    ("DEEP_ARCHIVE", "Bulk"): 48 * 3600,
}

READY, PENDING, REQUESTED = "ready", "pending", "requested"


def default_retry_after(storage_class: str, tier: str) -> int:
    """Seconds to tell a client to wait for a restore of ``storage_class`` at ``tier``."""
    return _RETRY_AFTER.get((storage_class, tier), 3600)


class TieredBackend(BlockBackend):
    """A hot backend plus a cold tier; subclasses say how an object moves and is read back."""

    #: whether an archived object must be restored before it can be read
    needs_restore: bool = False
    #: "cold store file:/srv/cold" or "S3 storage class GLACIER": for logs and reports
    description: str = ""
    #: whether ``archive`` wants the object's bytes (a copy to another store)
    wants_bytes: bool = False

    def __init__(self, hot: BlockBackend) -> None:
        self.hot = hot

    def put(self, key: str, data: bytes) -> None:
        self.hot.put(key, data)

    def replicas(self) -> list[tuple[str, BlockBackend]]:
        """The hot stores only: scrub verifies hot blocks (cold ones may need a restore)."""
        return self.hot.replicas()

    def leftovers(self) -> Iterator[ObjectInfo]:
        return self.hot.leftovers()

    def remove_leftover(self, key: str) -> None:
        self.hot.remove_leftover(key)

    def archive(self, key: str, data: bytes | None = None) -> None:
        """Move ``key`` to the cold tier (idempotent: a finished move is a no-op, a half-done
        one is finished). ``data``: the object's bytes, checked by the caller, when
        ``wants_bytes`` (None: the object is no longer in the hot store)."""
        raise NotImplementedError

    def thaw(self, key: str) -> bool:
        """Bring an archived object back to the hot tier (idempotent); False when it must be
        restored first (the restore is requested: try again later)."""
        raise NotImplementedError

    def restore_state(self, key: str) -> str:
        """``READY`` when ``key`` can be read now; else request a restore (idempotent) and
        answer ``REQUESTED`` (just asked) or ``PENDING`` (a restore is under way)."""
        return READY

    def retry_after(self) -> int:
        """Seconds a reader of an object being restored should wait."""
        return 3600


class ColdStoreBackend(TieredBackend):
    """Hot store plus a second, directly readable store for archived objects."""

    wants_bytes = True

    def __init__(self, hot: BlockBackend, cold: BlockBackend, name: str) -> None:
        super().__init__(hot)
        self.cold = cold
        self.description = f"cold store {name}"

    def get(self, key: str) -> bytes:
        try:
            return self.hot.get(key)
        except NotFound:
            return self.cold.get(key)

    def copies(self, key: str) -> Iterator[bytes]:
        """The hot copies, then the cold one (during a move both exist; a damaged hot copy is
        followed by the cold one)."""
        try:
            yield from self.hot.copies(key)
        except NotFound:
            pass
        yield from self.cold.copies(key)

    def delete(self, key: str) -> None:
        self.hot.delete(key)
        self.cold.delete(key)

    def exists(self, key: str) -> bool:
        return self.hot.exists(key) or self.cold.exists(key)

    def list(self) -> Iterator[ObjectInfo]:
        """Both stores' objects (a key being moved may appear twice)."""
        yield from self.hot.list()
        yield from self.cold.list()

    def archive(self, key: str, data: bytes | None = None) -> None:
        """Copy to the cold store, read the copy back, then delete the hot copy. With ``data``
        None the hot copy is gone (a move that crashed after deleting it): the cold copy must
        be there."""
        check_key(key)
        if data is None:
            if not self.cold.exists(key):
                raise NotFound(f"object {key} is in neither the hot nor the cold store")
            return
        self.cold.put(key, data)
        if self.cold.get(key) != data:
            raise StoreUnavailable(
                f"{self.description}: the copy of {key[:16]} reads back different bytes"
            )
        self.hot.delete(key)

    def thaw(self, key: str) -> bool:
        """Copy back to the hot store, read back, then delete the cold copy (a thaw that
        crashed after that finds the object hot already)."""
        check_key(key)
        try:
            data = self.cold.get(key)
        except NotFound:
            if self.hot.exists(key):
                return True
            raise
        self.hot.put(key, data)
        if self.hot.get(key) != data:
            raise StoreUnavailable(f"hot store: the copy of {key[:16]} reads back different bytes")
        self.cold.delete(key)
        return True

    def close(self) -> None:
        try:
            self.hot.close()
        finally:
            self.cold.close()


class StorageClassBackend(TieredBackend):
    """One S3 store whose archived objects are moved to another storage class in place."""

    def __init__(
        self,
        hot: Any,  # an S3Backend (not imported here: the s3 extra may be absent)
        storage_class: str,
        *,
        restore_days: int = 7,
        restore_tier: str = "Standard",
        retry_after: int | None = None,
    ) -> None:
        super().__init__(hot)
        if storage_class not in STORAGE_CLASSES:
            raise ValueError(f"unknown storage class {storage_class!r}")
        self.storage_class = storage_class
        self.needs_restore = storage_class in RESTORE_CLASSES
        self.restore_days = int(restore_days)
        self.restore_tier = restore_tier
        self._retry_after = retry_after or default_retry_after(storage_class, restore_tier)
        self.description = f"S3 storage class {storage_class}"
        self._client: Any = None

    # -- the data path is the hot store's --------------------------------------------------------
    def get(self, key: str) -> bytes:
        try:
            return self.hot.get(key)
        except StoreUnavailable:
            # An archived object answers 403 InvalidObjectState until restored (a reader that
            # did not check first, e.g. a ZIP of a folder): say so instead of "unavailable".
            if self.needs_restore and self.restore_state(key) != READY:
                raise Archived(
                    f"archived; restore requested, retry after {self._retry_after} s",
                    retry_after=self._retry_after,
                ) from None
            raise

    def delete(self, key: str) -> None:
        self.hot.delete(key)

    def exists(self, key: str) -> bool:
        return self.hot.exists(key)

    def list(self) -> Iterator[ObjectInfo]:
        return self.hot.list()

    def close(self) -> None:
        self.hot.close()

    # -- control calls (boto3) -----------------------------------------------------------------
    def _s3(self) -> Any:
        if self._client is None:
            self._client = self.hot.control_client()
        return self._client

    def _where(self, key: str) -> dict[str, str]:
        prefix = self.hot.prefix
        return {"Bucket": self.hot.bucket, "Key": f"{prefix}/{key}" if prefix else key}

    def _head(self, key: str) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self._s3().head_object(**self._where(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise NotFound(f"object {key} not found") from None
            raise self._unavailable(f"head {key[:16]}", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable(f"head {key[:16]}", exc) from exc

    def _unavailable(self, op: str, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(
            f"{self.hot.where}: {op} failed: {str(exc).splitlines()[0][:300]}",
            retry_after=30,
        )

    def archive(self, key: str, data: bytes | None = None) -> None:
        """CopyObject onto itself with the new StorageClass (a no-op when already there)."""
        from botocore.exceptions import BotoCoreError, ClientError

        check_key(key)
        current = self._head(key).get("StorageClass") or "STANDARD"
        if current == self.storage_class:
            return
        if current in RESTORE_CLASSES:
            # already in a class that needs a restore (an earlier config): leave it there
            log.info("archive: %s is already in %s; left there", key[:16], current)
            return
        where = self._where(key)
        try:
            self._s3().copy_object(
                **where,
                CopySource=dict(where),
                StorageClass=self.storage_class,
                MetadataDirective="COPY",
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable(f"copy {key[:16]} to {self.storage_class}", exc) from exc

    def thaw(self, key: str) -> bool:
        """CopyObject back to STANDARD once the object is readable (a class that needs no
        restore, or a finished restore); else the restore is requested and False answered."""
        from botocore.exceptions import BotoCoreError, ClientError

        check_key(key)
        if (self._head(key).get("StorageClass") or "STANDARD") == "STANDARD":
            return True
        if self.restore_state(key) != READY:
            return False
        where = self._where(key)
        try:
            self._s3().copy_object(
                **where, CopySource=dict(where), StorageClass="STANDARD", MetadataDirective="COPY"
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable(f"copy {key[:16]} back to STANDARD", exc) from exc
        return True

    def restore_state(self, key: str) -> str:
        """HEAD the object: readable (any class that needs no restore, or a finished restore),
        being restored, or archived (then RestoreObject is sent: ``restore_days`` days at
        ``restore_tier``; "already in progress" counts as pending)."""
        from botocore.exceptions import BotoCoreError, ClientError

        head = self._head(key)
        if (head.get("StorageClass") or "STANDARD") not in RESTORE_CLASSES:
            return READY
        restore = head.get("Restore") or ""
        if 'ongoing-request="false"' in restore:
            return READY
        if 'ongoing-request="true"' in restore:
            return PENDING
        try:
            self._s3().restore_object(
                **self._where(key),
                RestoreRequest={
                    "Days": self.restore_days,
                    "GlacierJobParameters": {"Tier": self.restore_tier},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "RestoreAlreadyInProgress":
                return PENDING
            raise self._unavailable(f"restore {key[:16]}", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable(f"restore {key[:16]}", exc) from exc
        return REQUESTED

    def retry_after(self) -> int:
        return self._retry_after


__all__ = [
    "PENDING",
    "READY",
    "REQUESTED",
    "RESTORE_CLASSES",
    "RESTORE_TIERS",
    "STORAGE_CLASSES",
    "ColdStoreBackend",
    "StorageClassBackend",
    "TieredBackend",
    "default_retry_after",
]
