"""Strict HTTP/1.1 request framing (issue 16, item 8): ambiguous framing is a 400 and a closed
connection, never a guess.

Behind a reverse proxy, a request whose length two parsers may read differently is the raw
material of request smuggling (RFC 9112 §6.3, §11.2). cheroot 11 is lenient: the last of two
``Content-Length`` headers wins, ``int()`` accepts ``+5``, `` 5``, ``5_0`` and ``-1``, a
``Transfer-Encoding`` with a ``Content-Length`` is accepted, folded (obs-fold) and
space-before-colon header lines are accepted, an HTTP/1.0 request's ``Transfer-Encoding`` is
ignored (its chunked body is then read as the next request), and a chunk-size line goes through
``int(line, 16)`` (``+5``, ``0x5``, junk after ``;``) with the chunk read in one
``read(size)`` (a huge size is one huge allocation). Here:

- ``StrictHeaderReader`` refuses, before the app runs and before any ``100 Continue``: a second
  ``Content-Length``; a ``Content-Length`` that is not 1–18 ASCII digits; any
  ``Transfer-Encoding`` other than exactly ``chunked`` (a list, ``identity``, ``gzip``, empty);
  both ``Transfer-Encoding`` and ``Content-Length``; obs-fold; a header name that is not a token
  (``Content-Length : 5``); a header value holding CR or NUL.
- ``refuse_http10_chunked``: ``Transfer-Encoding`` on an HTTP/1.0 request.
- ``StrictChunkedRFile`` (``wsgi.input`` of a chunked request) accepts only
  ``1*16HEXDIG *(chunk-ext) CRLF`` size lines with token/quoted-string extensions, CRLF after
  each chunk and a well-formed trailer section, reads chunk data in pieces, and on a violation
  records ``framing_error`` and raises ``BadFraming`` (a ``ValueError``, like cheroot's).
- ``FramingGuard`` (WSGI middleware) turns whatever the app answers after reading such a body
  into ``400 Bad Request`` with ``Connection: close``; the server closes the connection (the
  body's end was never found).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from cheroot import errors as cheroot_errors
from cheroot.server import HeaderReader, comma_separated_headers

CRLF = b"\r\n"
MAX_CONTENT_LENGTH_DIGITS = 18  # < 2**63: no overflow in any consumer
MAX_CHUNK_LINE = 4096  # a chunk-size line with its extensions
MAX_TRAILER_BYTES = 16 << 10
READ_PIECE = 64 << 10  # largest single read from the socket for chunk data

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_HEADER_NAME = re.compile(_TOKEN)
_QUOTED = rb'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*"'
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})"
    rb"(?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*"
    rb"\r\n"
)
_TRAILER_LINE = re.compile(_TOKEN + rb":[^\r\n\x00]*\r\n")

CONTENT_LENGTH = b"Content-Length"
TRANSFER_ENCODING = b"Transfer-Encoding"


class BadFraming(ValueError):
    """The request's framing is malformed or ambiguous (answer 400, close the connection)."""


class StrictHeaderReader(HeaderReader):
    """cheroot's header reader with the framing rules of the module docstring.

    Raises ``ValueError`` (cheroot answers ``400 Bad Request`` with the message and closes).
    """

    def __call__(self, rfile: Any, hdict: dict[bytes, bytes] | None = None) -> dict[bytes, bytes]:
        """Read the header section from ``rfile`` into ``hdict``; refuse ambiguous framing."""
        if hdict is None:
            hdict = {}
        while True:
            line = rfile.readline()
            if not line:
                raise ValueError("Illegal end of headers.")
            if line == CRLF:
                break
            if not line.endswith(CRLF):
                raise ValueError("HTTP requires CRLF terminators")
            if line[:1] in (b" ", b"\t"):
                raise BadFraming("Folded (obs-fold) header lines are not accepted")
            name, colon, value = line[:-2].partition(b":")
            if not colon or not _HEADER_NAME.fullmatch(name):
                raise BadFraming("Illegal header line")
            value = value.strip(b" \t")
            if b"\r" in value or b"\x00" in value:
                raise BadFraming("Illegal character in a header value")
            key = name.title()
            if key == CONTENT_LENGTH:
                if key in hdict:
                    raise BadFraming("More than one Content-Length header")
                if not value.isdigit() or len(value) > MAX_CONTENT_LENGTH_DIGITS:
                    raise BadFraming("Malformed Content-Length header")
            elif key in comma_separated_headers:
                existing = hdict.get(key)
                if existing:
                    value = existing + b", " + value
            hdict[key] = value
        te = hdict.get(TRANSFER_ENCODING)
        if te is not None:
            if te.lower() != b"chunked":
                raise BadFraming('Transfer-Encoding must be exactly "chunked"')
            if CONTENT_LENGTH in hdict:
                raise BadFraming("Both Transfer-Encoding and Content-Length")
        return hdict


def refuse_http10_chunked(request_protocol: bytes, headers: dict[bytes, bytes]) -> str | None:
    """The reason to refuse an HTTP/1.0 request with ``Transfer-Encoding`` (cheroot would
    ignore the header and read the chunked body as the next request), else None."""
    if TRANSFER_ENCODING in headers and request_protocol != b"HTTP/1.1":
        return "Transfer-Encoding requires HTTP/1.1"
    return None


class StrictChunkedRFile:
    """``wsgi.input`` for a ``Transfer-Encoding: chunked`` body, parsed strictly.

    ``closed`` turns True once the last chunk and the trailer section were read (so the
    connection may be reused). ``framing_error`` holds the reason after a violation.
    """

    def __init__(self, rfile: Any, maxlen: int = 0) -> None:
        self.rfile = rfile
        self.maxlen = maxlen
        self.bytes_read = 0
        self.closed = False
        self.framing_error: str | None = None
        self.trailers: list[bytes] = []
        self._left = 0  # bytes of the current chunk not read yet
        self._pending = b""  # read ahead by readline

    # -- parsing ---------------------------------------------------------------------------
    def _bad(self, reason: str) -> BadFraming:
        self.framing_error = reason
        return BadFraming(reason)

    def _line(self, limit: int) -> bytes:
        line = self.rfile.readline(limit + 1)
        self.bytes_read += len(line)
        if not line:
            raise ValueError("the request body ended before its last chunk")
        if not line.endswith(CRLF):
            if len(line) > limit or line.endswith(b"\n"):
                raise self._bad("Malformed chunked body: line too long or not CRLF-terminated")
            raise ValueError("the request body ended before its last chunk")
        return line

    def _next_chunk(self) -> None:
        """Read a chunk-size line (and, after the last chunk, the trailer section)."""
        line = self._line(MAX_CHUNK_LINE)
        match = _CHUNK_LINE.fullmatch(line)
        if match is None:
            raise self._bad(f"Malformed chunk size line {line[:40]!r}")
        size = int(match.group(1), 16)
        if self.maxlen and self.bytes_read + size > self.maxlen:
            raise cheroot_errors.MaxSizeExceeded("Request Entity Too Large", self.maxlen)
        if size:
            self._left = size
            return
        total = 0
        while (line := self._line(MAX_TRAILER_BYTES)) != CRLF:
            total += len(line)
            if total > MAX_TRAILER_BYTES or not _TRAILER_LINE.fullmatch(line):
                raise self._bad("Malformed chunked trailer section")
            self.trailers.append(line)
        self.closed = True

    def _read_some(self, size: int) -> bytes:
        """Up to ``size`` (> 0) body bytes; ``b""`` at the end of the body."""
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        if self.framing_error is not None:
            raise BadFraming(self.framing_error)
        if not self._left:
            if self.closed:
                return b""
            self._next_chunk()
            if self.closed:
                return b""
        data = self.rfile.read(min(size, self._left, READ_PIECE))
        if not data:
            raise ValueError("the request body ended inside a chunk")
        self.bytes_read += len(data)
        self._left -= len(data)
        if not self._left:
            end = self.rfile.read(2)
            self.bytes_read += len(end)
            if end != CRLF:
                if len(end) < 2 and CRLF.startswith(end):
                    raise ValueError("the request body ended inside a chunk")
                raise self._bad("Chunk data is not followed by CRLF")
        return data

    # -- file interface ----------------------------------------------------------------------
    def read(self, size: int | None = None) -> bytes:
        """Read ``size`` bytes (all when None or negative), fewer only at the end."""
        if size == 0:
            return b""
        parts: list[bytes] = []
        want = size if size is not None and size >= 0 else None
        while want is None or want > 0:
            data = self._read_some(READ_PIECE if want is None else want)
            if not data:
                break
            parts.append(data)
            if want is not None:
                want -= len(data)
        return b"".join(parts)

    def readline(self, size: int | None = None) -> bytes:
        """Read one line (at most ``size`` bytes when given)."""
        limit = size if size is not None and size >= 0 else None
        out = bytearray()
        while limit is None or len(out) < limit:
            if not self._pending:
                self._pending = self._read_some(8192)
                if not self._pending:
                    break
            end = self._pending.find(b"\n") + 1 or len(self._pending)
            if limit is not None:
                end = min(end, limit - len(out))
            out += self._pending[:end]
            self._pending = self._pending[end:]
            if out.endswith(b"\n"):
                break
        return bytes(out)

    def readlines(self, sizehint: int = 0) -> list[bytes]:
        """All remaining lines (stopping after ``sizehint`` bytes when positive)."""
        lines, total = [], 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < sizehint <= total:
                break
        return lines

    def read_trailer_lines(self) -> Iterator[bytes]:
        """The trailer lines, once the body was read to its end."""
        if not self.closed:
            raise ValueError("Cannot read trailers until the request body has been read.")
        yield from self.trailers

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def close(self) -> None:
        """Nothing to release (the connection owns the socket file)."""


BAD_FRAMING_BODY = b"bad request framing: %s\n"


class FramingGuard:
    """WSGI middleware: a chunked request whose body turned out malformed is answered
    ``400 Bad Request`` (+ ``Connection: close``) whatever the app made of the read error.

    Only requests with a ``Transfer-Encoding`` header take the slow path (header framing
    errors never reach the app).
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Run the app; replace its answer when ``wsgi.input`` recorded a framing error."""
        if "HTTP_TRANSFER_ENCODING" not in environ:
            return self.app(environ, start_response)
        stream = environ.get("wsgi.input")
        replaced: list[bytes] = []

        def guarded(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            problem = getattr(stream, "framing_error", None)
            if not problem:
                return start_response(status, headers, exc_info)
            body = BAD_FRAMING_BODY % problem.encode("latin-1", "replace")
            replaced.append(body)
            start_response(
                "400 Bad Request",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                    ("Connection", "close"),
                ],
                exc_info,
            )
            return lambda _data: None  # the app's own body is dropped

        result = self.app(environ, guarded)
        return _Replaceable(result, replaced)


class _Replaceable:
    """The app's response iterable, or the 400 body once ``FramingGuard`` replaced it."""

    def __init__(self, result: Iterable[bytes], replaced: list[bytes]) -> None:
        self._result = result
        self._replaced = replaced

    def __iter__(self) -> Iterator[bytes]:
        if not self._replaced:
            for chunk in self._result:
                if self._replaced:  # start_response was called lazily, during iteration
                    break
                yield chunk
        if self._replaced:
            yield self._replaced[0]

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            close()


__all__ = [
    "BadFraming",
    "FramingGuard",
    "StrictChunkedRFile",
    "StrictHeaderReader",
    "refuse_http10_chunked",
]
