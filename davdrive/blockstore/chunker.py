"""Content-defined chunking with fixed, published parameters.

A sync client must cut exactly the same blocks as the server, so the chunker is part of the
protocol and lives in :mod:`davdrive.protocol` (which the sync client may import); this module
re-exports it for the server's own modules.
"""

from __future__ import annotations

from davdrive.protocol import (
    AVG_SIZE,
    MAX_SIZE,
    MIN_SIZE,
    Chunker,
    chunk_bytes,
    make_chunker,
)

__all__ = ["AVG_SIZE", "MAX_SIZE", "MIN_SIZE", "Chunker", "chunk_bytes", "make_chunker"]
