"""Keep freed block buffers in the process instead of returning them to the kernel.

Every block is a few MiB; glibc serves allocations that large with fresh ``mmap`` pages and
unmaps them on free, so each block costs hundreds of page faults. On the VMs measured here that
doubled the CPU cost of a write (docs/PERFORMANCE.md). Raising the mmap and trim thresholds
makes glibc reuse the same heap memory; memory stays bounded by the pipeline depth.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
_done = False
_lock = threading.Lock()


def tune_allocator(
    mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20, arena_max: int = 2
) -> bool:
    """Apply once per process; a no-op (False) where the C library is not glibc.

    ``arena_max``: glibc gives busy threads arenas of their own (up to 8 per core), and each
    keeps its freed block buffers up to the trim threshold; a server with a thousand threads
    then holds several times the memory its pipeline needs (issue 15: peak RSS)."""
    global _done
    with _lock:
        if _done:
            return True
        if not sys.platform.startswith("linux"):
            return False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            return False
        ok = (
            bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold))
            and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))
            and bool(mallopt(M_ARENA_MAX, arena_max))
        )
        _done = ok
        return ok
