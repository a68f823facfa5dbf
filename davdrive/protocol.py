"""What a delta-sync client and the server must agree on, importable by both (the sync client
may import nothing else of davdrive): the chunking parameters, published at
``GET /api/v1/capabilities``.

FastCDC (2020, gear hash) as implemented by ``pyfastcdc`` with min 256 KiB, average 1 MiB,
max 4 MiB, normalized chunking level 1, seed 0; a block's id is the BLAKE3-256 hex digest of
its plaintext.
"""

from __future__ import annotations

KiB = 1024
MiB = 1024 * KiB

MIN_SIZE = 256 * KiB
AVG_SIZE = 1 * MiB
MAX_SIZE = 4 * MiB

CHUNK_PARAMS: dict[str, object] = {
    "algorithm": "fastcdc-2020",
    "implementation": "pyfastcdc 0.3",
    "min_size": MIN_SIZE,
    "avg_size": AVG_SIZE,
    "max_size": MAX_SIZE,
    "normalized_chunking": 1,
    "seed": 0,
    "block_id": "blake3-256 hex of the plaintext block",
}

__all__ = ["AVG_SIZE", "CHUNK_PARAMS", "MAX_SIZE", "MIN_SIZE"]
