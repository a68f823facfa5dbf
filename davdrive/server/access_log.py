"""Access log and error reporting as WSGI middleware around the outer dispatcher.

One line per request, written when the server closes the response iterable::

    2026-12-03T08:51:41.067+01:00 127.0.0.1 alice PUT /dav/alice/a.txt 201 0 12.3ms

(request start in local time, client address, login or ``-``, method, path and query as sent
with secret query values scrubbed, status, response body bytes, duration). The login comes from
``environ["davdrive.principal"]`` (set by the WebDAV domain controller and by the API's
``authenticate``). The target is ``access_log``: ``-`` stdout, a file path (reopened when
logrotate moves it), or ``off``.

Errors, on the stderr log:

- an exception out of the app (call or body) is logged at ERROR with its traceback; before any
  body byte it becomes a plain 500, after that ``ResponseAborted`` is raised so cheroot drops
  the connection: with a Content-Length the client sees a short body, never a clean end;
- a 5xx answer nobody logged an error for (an error the app mapped to a status) gets one ERROR
  line with the start of its body (507 "over quota / out of space": WARNING);
- a client that disconnects while sending its body (the body ends before its Content-Length,
  or reading it fails) gets one WARNING line; the errors that follow from it are not logged.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

from davdrive.server.logs import RequestContext, current_request, set_current_request

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

log = logging.getLogger("davdrive.server")
ACCESS_LOGGER = "davdrive.access"
EXCERPT = 300  # bytes of a 5xx body kept for the error line
# Query parameters whose values are secrets (matched as substrings of the lower-cased name).
SECRET_PARAMS = ("token", "pass", "pwd", "secret", "key", "sig", "auth", "credential", "session")
_QUERY_PAIR = re.compile(r"(^|&)([^=&]*)=([^&]*)")
_SHARE_LINK = re.compile(r"^(/s/[^/?]{0,4})[^/?]*")  # /s/<token>: keep 4 characters
_UNSAFE = re.compile(r"[^\x21-\x7e]")  # controls, spaces, non-ASCII: percent-encode


class ResponseAborted(Exception):
    """The response failed after its headers were sent; the connection must be dropped."""


def scrub_query(query: str) -> str:
    """``query`` with the values of secret-looking parameters replaced by ``***``."""

    def repl(m: re.Match[str]) -> str:
        name = m.group(2).lower()
        if any(s in name for s in SECRET_PARAMS):
            return f"{m.group(1)}{m.group(2)}=***"
        return m.group(0)

    return _QUERY_PAIR.sub(repl, query)


def log_target(environ: dict[str, Any]) -> str:
    """The request target as the client sent it (percent-encoded), secrets scrubbed."""
    raw = environ.get("REQUEST_URI")  # WSGI strings: latin-1 stands for the raw bytes
    if raw:
        path, _, query = raw.partition("?")
    else:
        native = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        path = quote(native.encode("latin-1", "replace"), safe="/")
        query = environ.get("QUERY_STRING", "")
    path = _SHARE_LINK.sub(r"\1***", path)
    target = path + ("?" + scrub_query(query) if query else "")
    return _UNSAFE.sub(lambda m: quote(m.group(0).encode("latin-1", "replace"), safe=""), target)


def _login(environ: dict[str, Any]) -> str:
    principal = environ.get("davdrive.principal")
    login = getattr(principal, "login", None) or environ.get("davdrive.login")
    return str(login) if login else "-"


def open_access_log(target: str) -> logging.Logger | None:
    """The access logger for ``access_log`` ("-" stdout, a path, "off": None)."""
    if target == "off":
        return None
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    handler: logging.Handler
    if target == "-":
        handler = logging.StreamHandler(sys.stdout)
    else:
        handler = logging.handlers.WatchedFileHandler(target, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    return logger


class _Input:
    """``wsgi.input`` that counts the body and notices a client that went away."""

    def __init__(self, stream: Any, ctx: RequestContext) -> None:
        self._stream = stream
        self._ctx = ctx

    def _got(self, data: bytes, size: int | None) -> bytes:
        ctx = self._ctx
        ctx.body_read += len(data)
        if (
            not data
            and size != 0
            and ctx.body_expected is not None
            and ctx.body_read < ctx.body_expected
        ):
            ctx.client_gone = True
        return data

    def _call(self, fn: Callable[..., bytes], size: int | None, *args: Any) -> bytes:
        try:
            data = fn(*args)
        except (OSError, ValueError):  # timeout, reset, a broken chunked body
            self._ctx.client_gone = True
            raise
        return self._got(data, size)

    def read(self, size: int | None = -1) -> bytes:
        """Read like ``wsgi.input.read``."""
        args = () if size is None or size < 0 else (size,)
        return self._call(self._stream.read, size, *args)

    def readline(self, size: int | None = -1) -> bytes:
        """Read a line like ``wsgi.input.readline``."""
        args = () if size is None or size < 0 else (size,)
        return self._call(self._stream.readline, size, *args)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Read into ``buffer`` (through ``read``, so the count and the checks apply)."""
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readlines(self, hint: int = -1) -> list[bytes]:
        """All lines (``hint`` as in ``io``)."""
        lines, total = [], 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class AccessLog:
    """The middleware (see the module docstring); ``logger`` None: no access lines."""

    def __init__(self, app: WSGIApp, logger: logging.Logger | None) -> None:
        self.app = app
        self.logger = logger

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        try:
            expected: int | None = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            expected = None
        ctx = RequestContext(
            method=environ.get("REQUEST_METHOD", "-"),
            target=log_target(environ),
            client=environ.get("REMOTE_ADDR") or "-",
            body_expected=expected,
        )
        set_current_request(ctx)
        if "wsgi.input" in environ:
            environ["wsgi.input"] = _Input(environ["wsgi.input"], ctx)

        def recording_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], Any]:
            write = start_response(status, headers, exc_info)
            ctx.status = status  # only a status the server took (not one after the headers)

            def counting_write(data: bytes) -> Any:
                ctx.sent += len(data)
                return write(data)

            return counting_write

        try:
            result = self.app(environ, recording_start_response)
        except Exception:
            ctx.login = _login(environ)
            self._log_exception(ctx, "failed")
            result = _error_500(recording_start_response)
        return _Body(result, ctx, environ, recording_start_response, self)

    # -- reporting ------------------------------------------------------------------------------
    def _log_exception(self, ctx: RequestContext, what: str) -> None:
        if ctx.client_gone:
            return  # reported once, as a warning, when the response closes
        if ctx.error_logged:
            # the app logged the traceback already (WsgiDAV's error printer does)
            log.error("%s %s %s after %d bytes", ctx.method, ctx.target, what, ctx.sent)
        else:
            log.error("%s %s %s after %d bytes", ctx.method, ctx.target, what, ctx.sent,
                      exc_info=True)  # fmt: skip
        ctx.error_logged = True

    def finish(self, ctx: RequestContext) -> None:
        """Write the access line and whatever the request still owes the error log."""
        elapsed_ms = (time.perf_counter() - ctx.started_monotonic) * 1000
        code = ctx.status_code
        if ctx.client_gone:
            expected = "?" if ctx.body_expected is None else str(ctx.body_expected)
            log.warning(
                "client %s (%s) disconnected during %s %s after %d of %s body bytes; "
                "answered %s",
                ctx.client, ctx.login, ctx.method, ctx.target, ctx.body_read, expected,
                code or "nothing",
            )  # fmt: skip
        elif code >= 500 and not ctx.error_logged:
            excerpt = ctx.error_excerpt.decode("utf-8", "replace").strip()
            level = logging.WARNING if code == 507 else logging.ERROR
            log.log(level, "%s %s answered %s: %s", ctx.method, ctx.target, ctx.status,
                    excerpt or "(no body)")  # fmt: skip
        if self.logger is None:
            return
        when = datetime.fromtimestamp(ctx.started).astimezone().isoformat(timespec="milliseconds")
        self.logger.info(
            "%s %s %s %s %s %s %d %.1fms",
            when, ctx.client, ctx.login, ctx.method, ctx.target, code or "-", ctx.sent,
            elapsed_ms,
        )  # fmt: skip


def _error_500(start_response: Callable[..., Any]) -> list[bytes]:
    body = b"internal server error\n"
    start_response(
        "500 Internal Server Error",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        sys.exc_info(),
    )
    return [body]


class _Body:
    """The response iterable: counts bytes, turns failures into 500 or a dropped connection,
    and logs the request when the server closes it."""

    def __init__(
        self,
        result: Iterable[bytes],
        ctx: RequestContext,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        owner: AccessLog,
    ) -> None:
        self._result = result
        self._ctx = ctx
        self._environ = environ
        self._start_response = start_response
        self._owner = owner
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        ctx = self._ctx
        try:
            for chunk in self._result:
                if chunk:
                    if ctx.status_code >= 500 and len(ctx.error_excerpt) < EXCERPT:
                        ctx.error_excerpt += chunk[: EXCERPT - len(ctx.error_excerpt)]
                    ctx.sent += len(chunk)
                yield chunk
        except Exception as exc:
            ctx.login = _login(self._environ)
            if ctx.sent == 0:  # no body byte yet, so no header sent: a clean 500 still fits
                self._owner._log_exception(ctx, "failed")
                try:
                    body = _error_500(self._start_response)
                except Exception:  # noqa: BLE001 - the server refused a second start
                    raise ResponseAborted(f"{ctx.method} {ctx.target} failed") from exc
                yield from body
                return
            self._owner._log_exception(ctx, "aborted")
            raise ResponseAborted(f"{ctx.method} {ctx.target} aborted") from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        ctx = self._ctx
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            ctx.login = _login(self._environ)
            try:
                self._owner.finish(ctx)
            finally:
                if current_request() is ctx:
                    set_current_request(None)


__all__ = ["AccessLog", "ResponseAborted", "log_target", "open_access_log", "scrub_query"]
