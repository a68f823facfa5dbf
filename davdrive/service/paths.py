"""Account-relative path parsing: the one place that decides what a hostile path is."""

from __future__ import annotations

from davdrive.errors import BadRequest

MAX_NAME_BYTES = 255
MAX_DEPTH = 256


def split_path(path: str) -> list[str]:
    """ "/a/b/" -> ["a", "b"]; "/" -> []. Rejects "..", ".", NUL, control characters and
    over-long names with ``BadRequest`` instead of interpreting them."""
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
    for part in parts:
        check_name(part)
    return parts


def check_name(name: str) -> str:
    """Validate one path component."""
    if name in (".", ".."):
        raise BadRequest(f"path component {name!r} is not allowed")
    if not name or "/" in name or "\x00" in name:
        raise BadRequest("invalid name")
    if any(ord(c) < 0x20 for c in name):
        raise BadRequest("name contains control characters")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise BadRequest("name is longer than 255 bytes")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("name is not valid UTF-8") from None
    return name


def join(parts: list[str]) -> str:
    return "/" + "/".join(parts)


def parent_and_name(path: str) -> tuple[list[str], str]:
    """Split into the parent's components and the last name (``BadRequest`` for the root)."""
    parts = split_path(path)
    if not parts:
        raise BadRequest("the root has no parent")
    return parts[:-1], parts[-1]
