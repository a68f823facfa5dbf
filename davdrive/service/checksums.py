"""Whole-content checksums a client announces with an upload (Nextcloud/ownCloud
``OC-Checksum: SHA1:<hex>``): parsing the header and hashing the body as it streams."""

from __future__ import annotations

import hashlib
import re
import zlib

from davdrive.errors import BadRequest

SUPPORTED: tuple[str, ...] = ("SHA1", "MD5", "ADLER32")
"""Canonical checksum type names, as ``parse_oc_checksum`` returns them."""

_HEX_LENGTH = {"SHA1": 40, "MD5": 32, "ADLER32": 8}
_HEX = re.compile(r"[0-9a-fA-F]+")


class ChecksumMismatch(BadRequest):
    """The uploaded content does not match the checksum the client announced."""

    code = "checksum_mismatch"


def parse_oc_checksum(header: str | None) -> tuple[str, str] | None:
    """``(type, lowercase hex)`` from an ``OC-Checksum`` value such as ``SHA1:ab12..``.

    ``None`` when the header is absent or names no supported type (the upload is then not
    verified, as Nextcloud does); ``BadRequest`` when a supported type has a malformed value.
    The header may list several space-separated values; the first supported one is used.
    """
    if not header or not header.strip():
        return None
    for item in header.split():
        kind, sep, value = item.partition(":")
        canonical = kind.strip().upper()
        if canonical not in _HEX_LENGTH:
            continue
        value = value.strip()
        if not sep or len(value) != _HEX_LENGTH[canonical] or not _HEX.fullmatch(value):
            raise BadRequest(f"malformed OC-Checksum value for {canonical}: {item!r}")
        return canonical, value.lower()
    return None


class ContentChecksum:
    """A streaming checksum of one of the ``SUPPORTED`` types."""

    SUPPORTED = SUPPORTED

    def __init__(self, kind: str) -> None:
        canonical = kind.upper()
        if canonical not in _HEX_LENGTH:
            raise BadRequest(f"unsupported checksum type {kind!r}")
        self.kind = canonical
        self._hash = hashlib.new(canonical.lower()) if canonical != "ADLER32" else None
        self._adler = 1  # zlib.adler32's initial value

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next bytes of the content."""
        if self._hash is not None:
            self._hash.update(data)
        else:
            self._adler = zlib.adler32(data, self._adler)

    def hexdigest(self) -> str:
        """Lowercase hex digest (Adler-32: 8 digits, zero-padded, as ownCloud writes it)."""
        if self._hash is not None:
            return self._hash.hexdigest()
        return f"{self._adler & 0xFFFFFFFF:08x}"

    def verify(self, expected: str) -> None:
        """Raise ``ChecksumMismatch`` unless the digest equals ``expected`` (hex)."""
        actual = self.hexdigest()
        if actual != expected.lower():
            raise ChecksumMismatch(
                f"{self.kind} checksum mismatch: expected {expected.lower()}, got {actual}",
                expected=expected.lower(),
                actual=actual,
                type=self.kind,
            )
