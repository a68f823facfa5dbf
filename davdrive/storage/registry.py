"""Picks a block backend by URL (the interface in ``base`` knows none of them).

``blocks_url`` is one URL, or a list of two or more stores (a replicated backend): each entry a
URL, or a mapping ``{url: ..., name: ..., s3: {...}}``. A store's name identifies it in the
durable repair queue, so it must not change while copies are owed; by default it is derived
from the URL (scheme, host, path and S3 endpoint; not the other options).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlparse

from davdrive.storage.base import BlockBackend
from davdrive.storage.repair_queue import RepairQueue

MAX_NAME = 64


@dataclass(frozen=True)
class S3Credentials:
    """Keys for S3 stores, from the config file (else the environment is used)."""

    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    @classmethod
    def from_config(cls, value: Mapping[str, Any] | None) -> S3Credentials | None:
        """``s3: {access_key_id, secret_access_key, session_token}`` (all optional)."""
        if not value:
            return None
        if not isinstance(value, Mapping):
            raise ValueError("s3 must be a mapping: {access_key_id: ..., secret_access_key: ...}")
        known = {"access_key_id", "secret_access_key", "session_token"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"s3: unknown key(s) {', '.join(unknown)} (known: {sorted(known)})")
        creds = cls(**{k: (str(v) if v else None) for k, v in value.items()})
        if bool(creds.access_key_id) != bool(creds.secret_access_key):
            raise ValueError("s3: give both access_key_id and secret_access_key, or neither")
        return creds

    def __repr__(self) -> str:  # never print a secret
        return f"S3Credentials(access_key_id={self.access_key_id!r}, secret_access_key=***)"


@dataclass(frozen=True)
class StoreSpec:
    """One store of ``blocks_url``: its name, URL and credentials."""

    name: str
    url: str
    s3: S3Credentials | None = None


def store_name(url: str) -> str:
    """A stable default name: ``file:/srv/blocks``, ``s3:bucket/prefix@host:8333``."""
    parsed = urlparse(url)
    name = f"{parsed.scheme}:{parsed.netloc}{parsed.path}".rstrip("/")
    endpoint = dict(parse_qsl(parsed.query)).get("endpoint")
    if endpoint:
        name += "@" + (urlparse(endpoint).netloc or endpoint)
    if len(name) > MAX_NAME:
        name = name[: MAX_NAME - 13] + "~" + hashlib.sha256(name.encode()).hexdigest()[:12]
    return name


def store_specs(blocks_url: Any, s3: S3Credentials | None = None) -> list[StoreSpec]:
    """The stores ``blocks_url`` names (one for a plain URL); raises ``ValueError``."""
    if isinstance(blocks_url, str):
        return [StoreSpec(store_name(blocks_url), blocks_url, s3)]
    if not isinstance(blocks_url, Sequence) or len(blocks_url) < 2:
        raise ValueError(
            "blocks_url must be a URL or a list of at least two store URLs (replication)"
        )
    specs = []
    for entry in blocks_url:
        if isinstance(entry, str):
            specs.append(StoreSpec(store_name(entry), entry, s3))
        elif isinstance(entry, Mapping) and isinstance(entry.get("url"), str):
            unknown = sorted(set(entry) - {"url", "name", "s3"})
            if unknown:
                raise ValueError(f"blocks_url entry: unknown key(s) {', '.join(unknown)}")
            name = str(entry.get("name") or store_name(entry["url"]))
            own = S3Credentials.from_config(entry.get("s3"))
            specs.append(StoreSpec(name, entry["url"], own or s3))
        else:
            raise ValueError(
                f"blocks_url: each store is a URL or {{url: ..., name: ...}}: {entry!r}"
            )
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"blocks_url: two stores are named {dup[0]!r}; give them names")
    bad = [n for n in names if not 0 < len(n) <= MAX_NAME]
    if bad:
        raise ValueError(f"blocks_url: a store name has 1 to {MAX_NAME} characters: {bad[0]!r}")
    return specs


def open_backend(
    blocks_url: str | Sequence[Any],
    *,
    s3: S3Credentials | None = None,
    repair_queue: RepairQueue | None = None,
    min_copies: int | None = None,
    archive: ColdSettings | None = None,
) -> BlockBackend:
    """Build a backend from ``file:///path``, ``memory://``,
    ``s3://bucket/prefix?endpoint=...&region=...`` (see ``davdrive.storage.s3``), or a list of
    them (``davdrive.storage.replicated``: ``min_copies`` of them, default all, must take each
    write; the copies owed to the others go to ``repair_queue``). An ``archive`` with a ``url``
    or ``storage_class`` adds the cold tier (``davdrive.storage.tiered``)."""
    specs = store_specs(blocks_url, s3)
    if len(specs) == 1:
        if min_copies not in (None, 0, 1):
            raise ValueError("min_copies needs blocks_url to list several stores")
        backend = _open_one(specs[0])
    else:
        from davdrive.storage.replicated import ReplicatedBackend

        for spec in specs:  # a bad URL is refused at once, not when the store is first used
            _check_url(spec.url)
        backend = ReplicatedBackend(
            [(spec.name, _opener(spec)) for spec in specs],
            min_copies=min_copies or None,
            queue=repair_queue,
        )
    if archive is None or not (archive.url or archive.storage_class):
        return backend
    try:
        return _with_cold_tier(backend, specs, archive, s3)
    except BaseException:
        backend.close()
        raise


class ColdSettings(Protocol):
    """The config's ``archive`` section as the registry reads it (``davdrive.config.Archive``)."""

    url: str
    storage_class: str
    restore_days: int
    restore_tier: str
    retry_after: int


def _with_cold_tier(
    hot: BlockBackend, specs: list[StoreSpec], archive: ColdSettings, s3: S3Credentials | None
) -> BlockBackend:
    """``hot`` decorated with the cold tier ``archive`` names."""
    from davdrive.storage.tiered import ColdStoreBackend, StorageClassBackend

    if archive.url:
        if archive.storage_class:
            raise ValueError("archive: give url or storage_class, not both")
        cold = StoreSpec(store_name(archive.url), archive.url, s3)
        if any(store_name(spec.url) == cold.name for spec in specs):
            raise ValueError(f"archive.url {archive.url!r} is a store of blocks_url")
        return ColdStoreBackend(hot, _open_one(cold), cold.name)
    try:
        from davdrive.storage.s3 import S3Backend
    except ImportError:  # no s3 extra: blocks_url cannot be an s3:// store either
        S3Backend = None  # type: ignore[assignment,misc]  # noqa: N806
    if S3Backend is None or not isinstance(hot, S3Backend):
        raise ValueError(
            "archive.storage_class needs blocks_url to be one s3:// store "
            "(give archive.url, a second store, otherwise)"
        )
    return StorageClassBackend(
        hot,
        archive.storage_class,
        restore_days=archive.restore_days,
        restore_tier=archive.restore_tier,
        retry_after=archive.retry_after or None,
    )


def _opener(spec: StoreSpec):  # noqa: ANN202 - a zero-argument factory
    return lambda: _open_one(spec)


def _check_url(url: str) -> None:
    scheme = urlparse(url).scheme
    if scheme not in ("file", "memory", "s3"):
        raise ValueError(
            f"unsupported blocks_url {url!r} (use file:///path, memory:// or s3://bucket/prefix)"
        )


def _open_one(spec: StoreSpec) -> BlockBackend:
    url = spec.url
    _check_url(url)
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from davdrive.storage.local import LocalBackend

        return LocalBackend(parsed.path)
    if parsed.scheme == "memory":
        from davdrive.storage.memory import MemoryBackend

        return MemoryBackend()
    try:
        from davdrive.storage.s3 import open_s3
    except ImportError as exc:
        raise RuntimeError(
            f"blocks_url {url!r} needs the S3 client libraries ({exc.name} is missing): "
            "pip install 'davdrive[s3]'"
        ) from exc
    creds = spec.s3 or S3Credentials()
    return open_s3(
        url,
        access_key=creds.access_key_id,
        secret_key=creds.secret_access_key,
        session_token=creds.session_token,
    )


__all__ = [
    "ColdSettings",
    "S3Credentials",
    "StoreSpec",
    "open_backend",
    "store_name",
    "store_specs",
]
