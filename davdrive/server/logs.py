"""Logging of ``davdrive serve``: one stderr handler, WsgiDAV and cheroot routed into it.

- WsgiDAV's base logger does not propagate and holds a ``NullHandler`` (``wsgidav/__init__``),
  so its 500 tracebacks were swallowed; here it propagates at WARNING (DEBUG when
  ``log_level`` is DEBUG). None of its records carries a secret: failed logins name the login,
  never the password; digest authentication (whose warnings dump the header) is disabled.
- cheroot prints its errors with ``sys.stderr.write``; ``davdrive.server.serve`` routes them to
  the ``davdrive.server.http`` logger instead.
- A per-thread ``RequestContext`` (set by the access-log middleware) lets the handler filter
  know, for the record being written, which request it belongs to: an ERROR during a request
  marks it "error logged" (the middleware then adds no second line), and ERROR records of a
  request whose client went away are dropped (the middleware writes one WARNING instead).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers whose ERROR records during a request from a vanished client are noise: the request
# failed because the client went away, and the middleware says so in one WARNING.
_CLIENT_GONE_NOISE = ("wsgidav", "davdrive.api", "davdrive.server.http")
# WsgiDAV warns at every start that Basic needs TLS; davdrive terminates TLS in cheroot or at a
# reverse proxy, which WsgiDAV cannot see, so the warning would only mislead.
_WSGIDAV_NOISE = ("Basic authentication is enabled",)


@dataclass
class RequestContext:
    """What the logs need to know about the request this thread is serving."""

    method: str
    target: str  # path and query as logged (secrets scrubbed)
    client: str
    started: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.perf_counter)
    status: str = ""
    login: str = "-"
    body_expected: int | None = None  # request Content-Length
    body_read: int = 0
    sent: int = 0  # response body bytes handed to the server
    client_gone: bool = False  # the request body stopped early or its read failed
    error_logged: bool = False  # an ERROR record was written during this request
    error_excerpt: bytes = b""  # the start of a 5xx body (the error message)

    @property
    def status_code(self) -> int:
        try:
            return int(self.status.split(" ", 1)[0])
        except ValueError:
            return 0


_local = threading.local()


def current_request() -> RequestContext | None:
    """The request this thread is serving, if any."""
    return getattr(_local, "request", None)


def set_current_request(ctx: RequestContext | None) -> None:
    """Mark (or clear, with None) the request this thread is serving."""
    _local.request = ctx


class RequestFilter(logging.Filter):
    """Per-request bookkeeping on the stderr handler (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop a vanished client's error noise; remember that an error was logged."""
        if record.name.startswith("wsgidav") and any(
            str(record.msg).startswith(n) for n in _WSGIDAV_NOISE
        ):
            return False
        ctx = current_request()
        if ctx is None or record.levelno < logging.ERROR:
            return True
        if ctx.client_gone and record.name.startswith(_CLIENT_GONE_NOISE):
            return False
        ctx.error_logged = True
        return True


def configure_logging(level: str = "INFO", stream: Any = None) -> logging.Handler:
    """Send every log record (davdrive, WsgiDAV, cheroot, Flask) to stderr at ``level``."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log_level: unknown level {level!r} (DEBUG, INFO, WARNING, ERROR)")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_davdrive", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RequestFilter())
    handler._davdrive = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(numeric)
    wsgidav = logging.getLogger("wsgidav")
    wsgidav.propagate = True
    wsgidav.setLevel(logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING)
    for chatty in ("apscheduler", "alembic"):  # a line per pass / per start otherwise
        logging.getLogger(chatty).setLevel(max(numeric, logging.WARNING))
    return handler


__all__ = [
    "RequestContext",
    "RequestFilter",
    "configure_logging",
    "current_request",
    "set_current_request",
]
