"""WebDAV of a share link at ``/s/<token>/dav/``: the shared node as the root of a small
WebDAV tree, for rclone, cadaver, davfs2 or a file manager, within the link's rights.

Anonymous when the link has no password; otherwise HTTP Basic with any user name and the link's
password (attempts limited per link and client: 429). A link that is unknown, revoked, expired or
used up answers 404 to everything. The same ``DriveProvider`` rules apply (the access rule puts
the holder below the link's node); what differs is the home (``/<token>/dav`` under ``/s``),
counting uses (a file downloaded with GET, a file uploaded with PUT) and the drop kind, whose
root lists nothing and whose other paths do not exist for its holder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from wsgidav.dav_error import HTTP_NOT_FOUND, DAVError
from wsgidav.dc.base_dc import BaseDomainController
from wsgidav.wsgidav_app import WsgiDAVApp

from davdrive import errors
from davdrive.service.access import Perm
from davdrive.service.links import OpenLink
from davdrive.service.types import NodeInfo, Principal
from providers.auth import PRINCIPAL_KEY
from providers.dav_app import dav_config, wrap_dav
from providers.errors import HTTP_TOO_MANY_REQUESTS
from providers.provider import DriveProvider
from providers.resources import FolderResource, dav_errors

if TYPE_CHECKING:
    from davdrive.app import App

SHARE = "/s"
LINK_KEY = "davdrive.link"  # environ: the OpenLink of this request
TOKEN_KEY = "davdrive.link_token"  # environ: its token
REALM = "davdrive link"


def _token(path: str) -> str:
    """The token of "/s/<token>/dav/..." (or of the share-relative "/<token>/dav/...")."""
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == SHARE.strip("/"):
        parts = parts[1:]
    return parts[0] if parts else ""


def _open(app: App, environ: dict[str, Any]) -> OpenLink:
    link = environ.get(LINK_KEY)
    if link is None:
        token = _token(environ.get("PATH_INFO", ""))
        try:
            link = app.drive.links.open(token)
        except errors.NotFound:
            raise DAVError(HTTP_NOT_FOUND, "no such link") from None
        environ[LINK_KEY], environ[TOKEN_KEY] = link, token
    return link


def _let_in(environ: dict[str, Any], p: Principal) -> None:
    environ[PRINCIPAL_KEY] = p
    environ["wsgidav.auth.user_name"] = p.login
    environ["davdrive.login"] = p.login


class LinkDomainController(BaseDomainController):
    """Who may use a link's WebDAV: anyone, or whoever gives its password."""

    def __init__(self, wsgidav_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, config)
        self.app = config["davdrive"]["app"]

    def __str__(self) -> str:
        return "LinkDomainController()"

    def get_domain_realm(self, path_info: str, environ: dict[str, Any] | None) -> str:
        return REALM

    def require_authentication(self, realm: str, environ: dict[str, Any] | None) -> bool:
        """404 for a dead link; no credentials needed without a password (asked without a
        request at start-up: the share as a whole needs them)."""
        if environ is None:
            return True
        link = _open(self.app, environ)
        if link.protected:
            return True
        _let_in(environ, link.principal)
        return False

    def supports_http_digest_auth(self) -> bool:
        return False

    def basic_auth_user(
        self, realm: str, user_name: str, password: str, environ: dict[str, Any]
    ) -> bool:
        """Any user name with the link's password; 429 after too many wrong ones."""
        link = _open(self.app, environ)
        try:
            ok = self.app.drive.links.unlock(link, password, environ.get("REMOTE_ADDR"))
        except errors.TooManyRequests as exc:
            retry = exc.details.get("retry_after") if exc.details else None
            raise DAVError(
                HTTP_TOO_MANY_REQUESTS,
                context_info="too many wrong passwords; try again later",
                add_headers=[("Retry-After", str(int(float(retry or 60))))],
            ) from None
        if ok:
            _let_in(environ, link.principal)
        return ok


class DropRoot(FolderResource):
    """A drop link's root: a folder that lists nothing."""

    def _list(self) -> list[NodeInfo]:
        self._members = []
        return []

    def get_member_names(self) -> list[str]:
        return []


class LinkProvider(DriveProvider):
    """``/<token>/dav/...`` under ``/s`` onto the link's node."""

    def __repr__(self) -> str:
        return "LinkProvider()"

    def home_len(self, parts: list[str], p: Principal, environ: dict[str, Any]) -> int:
        link = environ.get(LINK_KEY)
        if link is None or len(parts) < 2 or parts[1] != "dav":
            return 0
        if parts[0] != environ.get(TOKEN_KEY) or link.principal != p:
            return 0
        return 2

    def home_url(self, p: Principal, environ: dict[str, Any]) -> str:
        return quote(f"{SHARE}/{environ.get(TOKEN_KEY, '')}/dav")

    def get_resource_inst(self, path: str, environ: dict[str, Any]) -> Any:
        parts = self.split(path, environ)
        link: OpenLink | None = environ.get(LINK_KEY)
        p = self.principal(environ)
        n = self.home_len(parts, p, environ)
        if not parts or not n or link is None:
            return None
        if link.kind == "drop":  # nothing exists for a drop's holder but an empty root
            if len(parts) > n:
                return None
            node = NodeInfo(
                link.principal.link.id if link.principal.link else 0,
                p.user_id,
                None,
                link.name,
                "/",
                True,
                0,
                None,
                None,
                "drop",
                time.time(),
                0.0,
                "ok",
                int(Perm.CREATE),
            )
            return DropRoot(self, "/" + "/".join(parts), "/", node, environ)
        return super().get_resource_inst(path, environ)

    def custom_request_handler(
        self, environ: dict[str, Any], start_response: Callable, default_handler: Callable
    ) -> Any:
        """A use is counted for each file downloaded (GET) or uploaded (PUT)."""
        link: OpenLink | None = environ.get(LINK_KEY)
        method = environ["REQUEST_METHOD"]
        if link is not None and method in ("GET", "PUT"):
            if method == "GET":
                res = self.get_resource_inst(environ["PATH_INFO"], environ)
                counts = res is not None and not res.is_collection
            else:  # an upload the link refuses must not use it up: check first
                counts = self._upload_allowed(environ)
            if counts:
                with dav_errors():
                    self.drive.links.use(link)
        return super().custom_request_handler(environ, start_response, default_handler)

    def _upload_allowed(self, environ: dict[str, Any]) -> bool:
        """Whether a PUT here would be accepted (rights, folder, quota, size); False lets the
        request run on and fail with its own status, uncounted."""
        parts = self.split(environ["PATH_INFO"], environ)
        p = self.principal(environ)
        n = self.home_len(parts, p, environ)
        if not n or len(parts) <= n:
            return False
        try:
            self.drive.check_upload(p, "/" + "/".join(parts[n:]), declared_size=_declared(environ))
        except errors.DriveError:
            return False
        return True


def _declared(environ: dict[str, Any]) -> int | None:
    raw = str(environ.get("CONTENT_LENGTH") or "").strip()
    return int(raw) if raw.isdigit() else None


def link_dav_config(app: App, *, verbose: int = 1) -> dict[str, Any]:
    """The WsgiDAV config of the links' WebDAV: ``/dav``'s, with the link provider and
    domain controller, and neither bearer tokens nor RFC 6578."""
    config = dav_config(app, verbose=verbose)
    config["provider_mapping"] = {SHARE: LinkProvider(app.drive)}
    config["middleware_stack"] = [
        "wsgidav.error_printer.ErrorPrinter",
        "wsgidav.http_authenticator.HTTPAuthenticator",
        "wsgidav.request_resolver.RequestResolver",
    ]
    config["http_authenticator"] = {
        **config["http_authenticator"],
        "domain_controller": "providers.link_provider.LinkDomainController",
    }
    return config


def make_link_dav_app(app: App, **kwargs: Any) -> Callable[..., Iterable[bytes]]:
    """The WSGI callable serving ``/s/<token>/dav/...`` (the full path is passed)."""
    return wrap_dav(WsgiDAVApp(link_dav_config(app, **kwargs)))


__all__ = ["LinkProvider", "make_link_dav_app"]
