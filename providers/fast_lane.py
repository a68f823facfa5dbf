"""The fast lane of the drive's WebDAV doors: plain ``GET``/``HEAD`` of a file and plain ``PUT``,
answered in front of WsgiDAV's middleware stack with exactly what WsgiDAV answers.

WsgiDAV runs every request through its app (path re-encoding, share routing, a response
wrapper), the error printer, both authenticators, the sync-report middleware, the request
resolver and the request server, each a generator around the body; for a 4 KiB file that is
a good part of the Python a request runs outside the drive. For the two requests a file copy
is made of, none of them changes the answer:

- ``GET``/``HEAD`` of a file without conditions (no ``If``/``If-*`` header, no ``Range``, no
  ``Depth`` other than 0, no body, no ``?logout``): the lane sends what
  ``RequestServer._send_resource`` sends (``Content-Length``, ``Last-Modified``,
  ``Content-Type``, ``Date``, ``ETag``, ``Accept-Ranges``, the version's bytes in
  ``block_size`` pieces);
- a plain ``PUT`` below the caller's home (``providers.fast_put.is_plain_put``, a valid
  ``X-OC-Mtime`` if any): the lane runs ``providers.fast_put.plain_put``, which
  ``DriveProvider.custom_request_handler`` runs for it too, with WsgiDAV's rule for an unread
  body (``Connection: close``).

The lane checks the credentials by the domain controller's rules (``providers.auth``: Basic or
Bearer, the same ``Accounts`` calls, so the verification cache, its revocation check and the
login limits apply unchanged) and resolves paths through the same provider (the same path
rules, home check and access rule). Anything else falls through to WsgiDAV, which answers it
as before: wrong or missing credentials, a folder, a missing file, a forbidden path, any other
method. The credentials' outcome travels with the request (``providers.auth.AUTH_MEMO_KEY``)
and the node found stays in the request's node cache, so falling through verifies nothing
twice. Once the lane has taken a request, it runs under WsgiDAV's own ``ErrorPrinter``, so a
failure (a damaged or archived block, a 409/423/507 of the commit) gets WsgiDAV's error answer
and log lines. ``tests/dav/test_fast_lane.py`` compares the lane's answers with WsgiDAV's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from wsgidav import util
from wsgidav.dav_error import DAVError
from wsgidav.error_printer import ErrorPrinter
from wsgidav.wsgidav_app import WsgiDAVApp

from providers.auth import PRINCIPAL_KEY, DriveDomainController, lane_principal
from providers.fast_put import CONDITIONAL, is_plain_put, plain_put
from providers.provider import DriveProvider, parse_oc_mtime
from providers.resources import MTIME_KEY

_TAKEN = "davdrive.fast_lane"  # environ: what the lane prepared for the printer's app
# Headers that make a GET conditional, partial or otherwise unusual: WsgiDAV answers those.
_NOT_PLAIN_GET = (*CONDITIONAL, "HTTP_RANGE", "HTTP_TRANSFER_ENCODING")


class FastLane:
    """The lane of one WsgiDAV app (see the module docstring); calling it returns the response
    iterable, or None when WsgiDAV must answer."""

    def __init__(self, dav: WsgiDAVApp, provider: DriveProvider) -> None:
        self.dav = dav
        self.provider = provider
        self.app = dav.config["davdrive"]["app"]
        self.block_size = int(dav.config.get("block_size") or 8192)
        # Once the lane has taken a request, errors are WsgiDAV's: its error printer renders.
        self.get_printer = ErrorPrinter(dav, self._send_file, dav.config)
        self.put_printer = ErrorPrinter(dav, self._store, dav.config)

    @classmethod
    def for_app(cls, dav: WsgiDAVApp, stack: list[str]) -> FastLane | None:
        """The lane for ``dav`` when it is one of the drive's doors as ``dav_config`` builds it
        (``stack`` is that middleware stack); None for any other configuration (share links,
        a directory browser, extra response headers, other path hotfixes)."""
        config = dav.config
        providers = list(dav.provider_map.values())
        authenticator = dav.http_authenticator
        if (
            len(providers) != 1
            or not isinstance(providers[0], DriveProvider)
            or authenticator is None
            or type(authenticator.domain_controller) is not DriveDomainController
            or config.get("middleware_stack") != stack
            or config.get("response_headers")
            or not dav.re_encode_path_info
            or dav.unquote_path_info
            or (config.get("dir_browser") or {}).get("enable")
        ):
            return None
        return cls(dav, providers[0])

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes] | None:
        method = environ.get("REQUEST_METHOD")
        if method in ("GET", "HEAD"):
            if not _plain_get(environ):
                return None
        elif method != "PUT" or not is_plain_put(environ):
            return None
        try:
            path = util.normalize_path(util.re_encode_wsgi(environ.get("PATH_INFO") or "/"))
        except (UnicodeDecodeError, DAVError):
            return None
        if path.endswith("/") or "logout" in environ.get("QUERY_STRING", ""):
            return None
        share, provider = self.dav.resolve_provider(path)
        if provider is not self.provider or lane_principal(self.app, environ) is None:
            return None
        rel = path[len(share) :]
        # What WsgiDAV's app adds to every request (resources read the provider from it).
        environ["wsgidav.app"] = self.dav
        environ["wsgidav.config"] = self.dav.config
        environ["wsgidav.provider"] = provider
        environ["wsgidav.verbose"] = self.dav.verbose
        if method == "PUT":
            return self._put(environ, start_response, share, rel)
        try:  # the node found here is cached in the environ: falling through costs nothing
            res = provider.get_resource_inst(rel, environ)
            if res is None or res.is_collection:
                return None
            headers = _file_headers(res, environ)
        except Exception:  # noqa: BLE001 - WsgiDAV answers it (and logs what it logs)
            return None
        self._take(environ, share, rel, (res, headers, method == "HEAD"))
        return self.get_printer(environ, start_response)

    @staticmethod
    def _take(environ: dict[str, Any], share: str, rel: str, prepared: Any) -> None:
        """The lane answers this request: leave the environ as WsgiDAV's app would."""
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + share
        environ["PATH_INFO"] = rel
        environ[_TAKEN] = prepared

    # -- GET / HEAD -------------------------------------------------------------------------
    def _send_file(self, environ: dict[str, Any], start_response: Callable) -> Iterator[bytes]:
        """The end of ``RequestServer._send_resource`` for a whole file (under the printer)."""
        res, headers, head = environ.pop(_TAKEN)
        start_response("200 OK", headers)
        if head:
            yield b""
            return
        remaining = res.get_content_length()
        if remaining is None:
            remaining = -1
        block = self.block_size
        content = res.get_content()
        try:
            while True:
                piece = content.read(block if remaining < 0 or remaining > block else remaining)
                yield piece
                remaining -= len(piece)
                if not piece or remaining == 0:
                    break
        finally:
            content.close()

    # -- PUT --------------------------------------------------------------------------------
    def _put(
        self, environ: dict[str, Any], start_response: Callable, share: str, rel: str
    ) -> Iterable[bytes] | None:
        """``custom_request_handler``'s way to ``plain_put``; None where it goes elsewhere."""
        provider = self.provider
        try:
            parts = provider.split(rel, environ)
            p = environ[PRINCIPAL_KEY]
            n = provider.home_len(parts, p, environ)
            if not n or len(parts) <= n:
                return None
            raw = environ.get("HTTP_X_OC_MTIME")
            mtime = parse_oc_mtime(raw) if raw else None
        except Exception:  # noqa: BLE001 - WsgiDAV answers it
            return None
        if mtime is not None:
            environ[MTIME_KEY] = mtime
        environ["wsgidav.user_name"] = p.login  # the lock principal, as the handler sets it
        self._take(environ, share, rel, (p, "/" + "/".join(parts[n:])))

        def respond(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            # WsgiDAV's app: a body not read to its end closes the connection.
            util.read_and_discard_input(environ)
            if (
                util.get_content_length(environ) != 0
                and not environ.get("wsgidav.all_input_read")
                and not any(k.lower() == "connection" and v == "close" for k, v in headers)
            ):
                headers.append(("Connection", "close"))
            return start_response(status, headers, exc_info)

        return self.put_printer(environ, respond)

    def _store(self, environ: dict[str, Any], start_response: Callable) -> Iterator[bytes]:
        p, dpath = environ.pop(_TAKEN)
        yield from plain_put(self.provider.drive, p, dpath, environ, start_response)


def _plain_get(environ: dict[str, Any]) -> bool:
    """A GET/HEAD without conditions, ranges, body or a depth other than 0."""
    if any(environ.get(key) is not None for key in _NOT_PLAIN_GET):
        return False
    if str(environ.get("CONTENT_LENGTH") or "0").strip() != "0":
        return False
    depth = environ.get("HTTP_DEPTH")
    return depth is None or depth.lower() == "0"


def _file_headers(res: Any, environ: dict[str, Any]) -> list[tuple[str, str]]:
    """``RequestServer._send_resource``'s headers for a whole-file answer (WsgiDAV 4.4)."""
    filesize = res.get_content_length()
    if filesize is None:
        filesize = -1
    last_modified = res.get_last_modified()
    if last_modified is None:
        last_modified = -1
    etag = util.checked_etag(res.get_etag(), allow_none=True)
    if etag is None:
        etag = "[]"
    headers = []
    if res.support_content_length():
        headers.append(("Content-Length", str(filesize)))
    if res.support_modified():
        headers.append(("Last-Modified", util.get_rfc1123_time(last_modified)))
    headers.append(("Content-Type", res.get_content_type()))
    headers.append(("Date", util.get_rfc1123_time()))
    if res.support_etag():
        headers.append(("ETag", f'"{etag}"'))
    if res.support_ranges():
        headers.append(("Accept-Ranges", "bytes"))
    res.finalize_headers(environ, headers)
    return headers


__all__ = ["FastLane"]
