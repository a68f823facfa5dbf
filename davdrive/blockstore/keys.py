"""Key hierarchy: master keys wrap per-account data keys; account keys derive from data keys.

* Master keys live in a 0600 key file (created on first start), newest first, one per line as
  ``<key id> <base64 key>``; or the current one comes from ``DAVDRIVE_MASTER_KEY`` (base64).
  Old master keys stay in the file after ``rotate`` until every account is rewrapped.
* Each account has a random 256-bit data key, stored wrapped (AES-256-GCM) in its user row with
  the master key id. Rotating the master key rewraps data keys; blocks are never rewritten.
* From a data key HKDF derives the block encryption key and the MAC key that turns a block id
  into its object key, so the storage backend cannot link content across accounts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from davdrive.config import ENV_MASTER_KEY
from davdrive.errors import IntegrityError

KEY_BYTES = 32


def new_data_key() -> bytes:
    """A fresh random 256-bit account data key."""
    return secrets.token_bytes(KEY_BYTES)


def key_id_of(key: bytes) -> str:
    """A short public id for a master key (not reversible)."""
    return hashlib.sha256(b"davdrive master key id\0" + key).hexdigest()[:16]


def _decode_key(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise ValueError(f"{source}: master key is not valid base64") from exc
    if len(key) != KEY_BYTES:
        raise ValueError(f"{source}: master key must be {KEY_BYTES} bytes, got {len(key)}")
    return key


class KeyRing:
    """Master keys, newest (current) first."""

    def __init__(self, keys: list[bytes], path: Path | None = None) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one master key")
        # Replaced as a whole under ``_lock``, never mutated, so readers need no lock; a reload
        # publishes the (larger) _keys before the _order that may name a new key.
        self._keys = {key_id_of(k): k for k in keys}
        self._order = [key_id_of(k) for k in keys]
        self.path = path
        self._lock = threading.Lock()
        self._seen = self._signature()

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str], env: dict[str, str] | None = None):
        """Load the key file (creating it with a random key, mode 0600, if missing).

        A key in ``$DAVDRIVE_MASTER_KEY`` becomes the current key; the file still supplies the
        older keys needed to unwrap accounts not yet rewrapped.
        """
        env = os.environ if env is None else env
        p = Path(path)
        keys: list[bytes] = []
        if p.exists():
            keys = cls._read_file(p)
        env_key = env.get(ENV_MASTER_KEY)
        if env_key:
            k = _decode_key(env_key, ENV_MASTER_KEY)
            keys = [k] + [x for x in keys if x != k]
            return cls(keys, None)
        if not keys:
            keys = [secrets.token_bytes(KEY_BYTES)]
            ring = cls(keys, p)
            ring._save()
            return ring
        return cls(keys, p)

    @staticmethod
    def _read_file(p: Path) -> list[bytes]:
        mode = p.stat().st_mode & 0o777
        if mode & 0o077:
            raise PermissionError(f"{p} is readable by others (mode {mode:o}); chmod 600 it")
        keys = []
        for n, line in enumerate(p.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            keys.append(_decode_key(parts[-1], f"{p}:{n}"))
        if not keys:
            raise ValueError(f"{p} holds no master key")
        return keys

    def _save(self) -> None:
        if self.path is None:
            raise RuntimeError(
                f"master key comes from ${ENV_MASTER_KEY}; rotate it there (keep the old key in "
                "the key file until `davdrive key rotate` has rewrapped every account)"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        lines = ["# davdrive master keys, newest first. Back this file up; losing it loses data."]
        lines += [f"{kid} {base64.b64encode(self._keys[kid]).decode()}" for kid in self._order]
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._seen = self._signature()
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _signature(self) -> tuple[int, int, int] | None:
        """What identifies the key file's content cheaply (inode, size, mtime), or None."""
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def reload(self) -> bool:
        """Re-read the key file (another process may have rotated); True if a key was added.

        The file's order decides the current key; keys this process knows that the file no
        longer lists (retired elsewhere) stay usable for unwrapping. Thread-safe.
        """
        if self.path is None:
            return False
        with self._lock:
            return self._reload_locked()

    def _reload_locked(self) -> bool:
        assert self.path is not None
        seen = self._signature()
        try:
            keys = self._read_file(self.path)
        except (OSError, ValueError):
            return False  # missing or unreadable now: keep what we have
        self._seen = seen
        ids = [key_id_of(k) for k in keys]
        added = any(kid not in self._keys for kid in ids)
        self._keys = {**self._keys, **dict(zip(ids, keys, strict=True))}
        self._order = ids + [kid for kid in self._order if kid not in ids]
        return added

    def _maybe_reload(self) -> None:
        """Reload when the key file changed since it was last read (one ``stat``)."""
        if self.path is not None and self._signature() != self._seen:
            self.reload()

    @property
    def current_id(self) -> str:
        return self._order[0]

    @property
    def ids(self) -> list[str]:
        return list(self._order)

    def wrap(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        """Encrypt a data key under the newest master key (the key file is checked for one a
        ``davdrive key rotate`` elsewhere added); ``context`` binds it to its owner."""
        self._maybe_reload()
        kid = self._order[0]  # before _keys: a reload publishes _keys (a superset) first
        nonce = secrets.token_bytes(12)
        return kid, nonce + AESGCM(self._keys[kid]).encrypt(nonce, data_key, context)

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        """Decrypt a wrapped data key; ``IntegrityError`` if the key is unknown or tampered.

        An unknown key id makes the ring re-read its key file once: another process (``davdrive
        key rotate``) may have added the key and rewrapped this account under it.
        """
        key = self._keys.get(key_id)
        if key is None and self.path is not None:
            self.reload()  # (another thread may have just done so: look again either way)
            key = self._keys.get(key_id)
        if key is None:
            raise IntegrityError(f"master key {key_id} is not in the key ring")
        try:
            return AESGCM(key).decrypt(wrapped[:12], wrapped[12:], context)
        except InvalidTag:
            raise IntegrityError("wrapped account key failed authentication") from None

    def rotate(self) -> str:
        """Add a new current master key (saved to the key file); return its id.

        The file is re-read first, so keys another process added are kept.
        """
        with self._lock:
            if self.path is not None:
                self._reload_locked()
            key = secrets.token_bytes(KEY_BYTES)
            kid = key_id_of(key)
            self._keys = {**self._keys, kid: key}
            self._order = [kid, *self._order]
            self._save()
            return kid

    def retire(self, key_id: str) -> None:
        """Drop an old master key once no account is wrapped under it."""
        with self._lock:
            if self.path is not None:
                self._reload_locked()
            if key_id == self.current_id:
                raise ValueError("cannot retire the current master key")
            self._order = [kid for kid in self._order if kid != key_id]
            self._keys = {kid: k for kid, k in self._keys.items() if kid != key_id}
            self._save()


def _hkdf(data_key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(data_key)


@dataclass(frozen=True)
class AccountKeys:
    """Per-account keys derived from its data key."""

    key_id: int  # the data key generation, written in every block header
    enc_key: bytes
    mac_key: bytes

    @classmethod
    def from_data_key(cls, data_key: bytes, key_id: int) -> AccountKeys:
        return cls(
            key_id,
            _hkdf(data_key, b"davdrive block encryption v1"),
            _hkdf(data_key, b"davdrive object key v1"),
        )

    def object_key(self, block_hash: str) -> str:
        """The backend key of a block: HMAC-SHA256(mac key, block id), hex."""
        return hmac.new(self.mac_key, bytes.fromhex(block_hash), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:  # never print key material
        return f"AccountKeys(key_id={self.key_id})"
