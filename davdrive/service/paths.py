"""Account-relative path parsing: the one place that decides what a hostile path is, and the
one spelling of a name.

Names are stored and compared in Unicode NFC. macOS clients send decomposed names (NFD:
``cafe`` + U+0301), most others composed ones (NFC: ``caf`` + U+00E9); both spellings look the
same, so they must name one file. Every service entry point that takes a path goes through
``split_path`` or ``parent_and_name`` (and a new name through ``check_name``), so every door
(WebDAV, the JSON API, tus sessions, the journal) sees the NFC form, as Nextcloud stores it.
"""

from __future__ import annotations

import unicodedata

from davdrive.errors import BadRequest

MAX_NAME_BYTES = 255
MAX_DEPTH = 256
NORMAL_FORM = "NFC"


def normalize_name(name: str) -> str:
    """``name`` in the stored form (Unicode NFC); ASCII and NFC names come back unchanged."""
    if name.isascii() or unicodedata.is_normalized(NORMAL_FORM, name):
        return name
    return unicodedata.normalize(NORMAL_FORM, name)


def split_path(path: str) -> list[str]:
    """ "/a/b/" -> ["a", "b"]; "/" -> []. Components come back in NFC. Rejects "..", ".", NUL,
    control characters and over-long names with ``BadRequest`` instead of interpreting them."""
    if not isinstance(path, str):
        raise BadRequest("path must be text")
    if "\x00" in path:
        raise BadRequest("path contains NUL")
    if "\\" in path:
        # Windows separators would let one name look like two on some clients.
        raise BadRequest("path contains a backslash")
    parts = [p for p in path.split("/") if p]
    if len(parts) > MAX_DEPTH:
        raise BadRequest("path is too deep")
    return [check_name(part) for part in parts]


def check_name(name: str) -> str:
    """Validate one path component; return it in NFC (the form to store and compare)."""
    if not isinstance(name, str):
        raise BadRequest("a name must be text")
    if name in (".", ".."):
        raise BadRequest(f"path component {name!r} is not allowed")
    if not name or "/" in name or "\x00" in name:
        raise BadRequest("invalid name")
    if any(ord(c) < 0x20 for c in name):
        raise BadRequest("name contains control characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("name is not valid UTF-8") from None
    # NFC never yields ".", "/", NUL or a control character from other characters (checked
    # over all of Unicode), so the checks above hold for the normalised name too.
    name = normalize_name(name)
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise BadRequest("name is longer than 255 bytes")
    return name


def join(parts: list[str]) -> str:
    """["a", "b"] -> "/a/b"; [] -> "/"."""
    return "/" + "/".join(parts)


def parent_and_name(path: str) -> tuple[list[str], str]:
    """Split into the parent's components and the last name, all in NFC (``BadRequest`` for
    the root)."""
    parts = split_path(path)
    if not parts:
        raise BadRequest("the root has no parent")
    return parts[:-1], parts[-1]
