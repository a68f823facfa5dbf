"""The web app's files at ``/ui/`` (plain WSGI; ``make_ui_app``).

- ``GET /`` → 302 ``/ui/``; ``GET /login`` → 302 ``/ui/#/login``; ``/ui`` → 301 ``/ui/``;
- ``/ui/`` and every path below it whose last segment has no extension (the app's deep links,
  ``/ui/files/docs``) → ``index.html``; ``/ui/<file>`` → that file of the static folder, or 404.

Only GET and HEAD (else 405). No listing, no dot files, no ``..``, ``\\`` or NUL in a path, and
nothing outside the folder (symbolic links are resolved and checked). Every answer carries
``Cache-Control: no-cache`` with an ``ETag`` (``If-None-Match`` → 304), the app's strict CSP,
``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and
``X-Frame-Options: DENY``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wsgidav.util import re_encode_wsgi

if TYPE_CHECKING:
    from davdrive.app import App

STATIC = Path(__file__).with_name("static") / "ui"
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".txt": "text/plain; charset=utf-8",
}
PIECE = 64 << 10
COMMON = [
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
]
StartResponse = Callable[..., Any]


class UIApp:
    """The WSGI app of ``/``, ``/login`` and ``/ui[/...]`` over one static folder."""

    def __init__(self, static_dir: Path | str | None = None) -> None:
        self.root = Path(static_dir if static_dir is not None else STATIC).resolve()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("davdrive.path")
        if path is None:
            try:
                path = re_encode_wsgi(environ.get("PATH_INFO") or "/")
            except UnicodeDecodeError:
                return self._plain(start_response, "404 Not Found", "not found")
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return self._plain(
                start_response, "405 Method Not Allowed", "GET only", [("Allow", "GET, HEAD")]
            )
        base = environ.get("SCRIPT_NAME", "")
        if path == "/":
            return self._redirect(start_response, "302 Found", base + "/ui/")
        if path == "/login":
            return self._redirect(start_response, "302 Found", base + "/ui/#/login")
        if path == "/ui":
            return self._redirect(start_response, "301 Moved Permanently", base + "/ui/")
        if not path.startswith("/ui/"):
            return self._plain(start_response, "404 Not Found", "not found")
        target = self._target(path[len("/ui/") :])
        if target is None:
            return self._plain(start_response, "404 Not Found", "not found")
        return self._file(environ, start_response, target, head=method == "HEAD")

    # -- resolving -----------------------------------------------------------------------------
    def _target(self, rel: str) -> Path | None:
        """The file to serve for ``rel`` (the path below ``/ui/``), or None (404)."""
        if "\\" in rel or "\x00" in rel:
            return None
        segments = [s for s in rel.split("/") if s]
        if any(s.startswith(".") for s in segments):  # "..", ".", dot files
            return None
        last = segments[-1] if segments else ""
        if "." not in last:  # "/ui/", a deep link of the app
            segments = ["index.html"]
        try:
            target = self.root.joinpath(*segments).resolve()
        except (OSError, RuntimeError, ValueError):
            return None
        if not target.is_relative_to(self.root) or not target.is_file():
            return None
        return target

    # -- answers -------------------------------------------------------------------------------
    def _file(
        self, environ: dict[str, Any], start_response: StartResponse, target: Path, *, head: bool
    ) -> Iterable[bytes]:
        try:
            st = target.stat()
        except OSError:
            return self._plain(start_response, "404 Not Found", "not found")
        tag = hashlib.sha256(f"{target}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()
        etag = f'"{tag[:32]}"'
        headers = [("ETag", etag), ("Cache-Control", "no-cache"), *COMMON]
        if _matches(environ.get("HTTP_IF_NONE_MATCH", ""), etag):
            start_response("304 Not Modified", headers)
            return []
        kind = TYPES.get(target.suffix.lower(), "application/octet-stream")
        headers += [("Content-Type", kind), ("Content-Length", str(st.st_size))]
        start_response("200 OK", headers)
        return [] if head else _read(target)

    def _redirect(self, start_response: StartResponse, status: str, location: str) -> list[bytes]:
        return self._plain(start_response, status, f"see {location}", [("Location", location)])

    def _plain(
        self,
        start_response: StartResponse,
        status: str,
        text: str,
        extra: list[tuple[str, str]] | None = None,
    ) -> list[bytes]:
        body = (text + "\n").encode()
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
            *COMMON,
            *(extra or []),
        ]
        start_response(status, headers)
        return [body]


def _matches(if_none_match: str, etag: str) -> bool:
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return etag in tags or "*" in tags


def _read(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while piece := fh.read(PIECE):
            yield piece


def make_ui_app(app: App | None = None, *, static_dir: Path | str | None = None) -> UIApp:
    """The web app's WSGI app (``app`` is unused: the files are static and the app talks to
    ``/api/v1``); ``static_dir`` replaces ``davdrive/web/static/ui`` (tests)."""
    return UIApp(static_dir)


__all__ = ["CSP", "STATIC", "TYPES", "UIApp", "make_ui_app"]
