"""Content-defined chunking with fixed, published parameters.

A sync client must cut exactly the same blocks as the server, so these numbers are part of the
protocol (served at ``GET /api/v1/capabilities``): FastCDC (2020, gear hash) as implemented by
``pyfastcdc`` with min 256 KiB, average 1 MiB, max 4 MiB, normalized chunking level 1, seed 0.
"""

from __future__ import annotations

from collections.abc import Iterator

from davdrive.protocol import AVG_SIZE, MAX_SIZE, MIN_SIZE


def _fastcdc_class() -> type:
    """The compiled FastCDC class; refuse the pure-Python fallback (~10 MB/s, 200x slower)."""
    try:
        from pyfastcdc.cy import FastCDC
    except ImportError as exc:  # pragma: no cover - depends on the installed wheel
        raise RuntimeError(
            "pyfastcdc's compiled module did not load; its pure-Python fallback is far too slow "
            f"for a file server ({exc}). Reinstall pyfastcdc from a wheel for this platform."
        ) from exc
    return FastCDC


_FastCDC = _fastcdc_class()


def make_chunker() -> object:
    """A FastCDC instance with the published parameters."""
    return _FastCDC(AVG_SIZE, min_size=MIN_SIZE, max_size=MAX_SIZE, normalized_chunking=1, seed=0)


class Chunker:
    """Push-style chunker: feed bytes, take complete blocks; bounded to ~2 x max block size.

    Cut points depend only on the content, never on how the stream was split into writes.
    """

    def __init__(self) -> None:
        self._cdc = make_chunker()
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> Iterator[bytes]:
        """Append ``data``; yield every block whose end is now certain."""
        self._buf += data
        while len(self._buf) >= MAX_SIZE:
            # With >= max_size bytes buffered the first cut is final whatever follows.
            first = next(iter(self._cdc.cut_buf(memoryview(self._buf)[:MAX_SIZE])))
            n = first.length
            del first
            block = bytes(memoryview(self._buf)[:n])
            del self._buf[:n]
            yield block

    def pending(self) -> bytes:
        """The bytes after the last certain cut (what a resumed stream must feed first)."""
        return bytes(self._buf)

    def finish(self) -> Iterator[bytes]:
        """Yield the remaining blocks at end of stream."""
        view = memoryview(self._buf)
        try:
            for chunk in self._cdc.cut_buf(view):
                yield bytes(chunk.data)
                del chunk
        finally:
            view.release()
            self._buf = bytearray()


def chunk_bytes(data: bytes) -> list[bytes]:
    """Cut a whole buffer (tests and small writes)."""
    return [bytes(c.data) for c in make_chunker().cut_buf(data)]
