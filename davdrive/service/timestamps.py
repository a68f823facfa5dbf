"""Modification times: the one place that reads one from a client and that makes a stored one
safe to show.

Accepted: seconds since the epoch from 1970-01-01 to 9999-12-31 as a number or an ASCII decimal
string. JavaScript clients (tus-js, browsers) send milliseconds; a value from 1e11 up to 1e14 (the
year 5138 in seconds, 1973 to 5138 in milliseconds) is taken as milliseconds. Anything else —
negative, NaN, infinite, non-ASCII digits such as '²', or past the year 9999 — is refused with
``BadRequest``, so no door can store a time that a later read cannot format.
"""

from __future__ import annotations

import math
import re

from davdrive.errors import BadRequest

MAX_SECONDS = 253_402_300_799.0  # 9999-12-31T23:59:59Z, the last instant ISO 8601 writes
MILLIS_FROM = 1e11  # from here on a client's number is milliseconds
MILLIS_UPTO = 1e14
_DECIMAL = re.compile(r"[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def parse_mtime(value: object, name: str = "mtime") -> float:
    """Seconds since the epoch from a client's number or string (``BadRequest`` otherwise)."""
    if isinstance(value, bool):
        raise BadRequest(f"'{name}' must be seconds since the epoch")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.isascii() and _DECIMAL.fullmatch(value.strip()):
        seconds = float(value.strip())
    else:
        raise BadRequest(f"'{name}' must be seconds since the epoch")
    if not math.isfinite(seconds) or seconds < 0:
        raise BadRequest(f"'{name}' is out of range")
    if MILLIS_FROM <= seconds < MILLIS_UPTO:
        seconds /= 1000.0
    if seconds > MAX_SECONDS:
        raise BadRequest(f"'{name}' is out of range (after the year 9999)")
    return seconds


def shown_mtime(value: float | None) -> float:
    """A stored time made safe to format: one written before validation existed may be out of
    range; it reads as the nearest valid instant instead of failing the whole listing."""
    if value is None or not math.isfinite(value):
        return 0.0
    return min(max(float(value), 0.0), MAX_SECONDS)


__all__ = ["MAX_SECONDS", "parse_mtime", "shown_mtime"]
