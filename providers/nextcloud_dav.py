"""The Nextcloud/ownCloud WebDAV URLs over the same provider: ``/remote.php/dav/files/<login>/``
and the legacy ``/remote.php/webdav/`` reach the caller's home exactly as ``/dav/<login>/`` does
(same tree, same access rule, same shares). Locks taken through these URLs are kept under the
``/dav/`` URL of the node (``service.locks.LockView``), so a lock binds every door whichever URL
took it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from wsgidav.wsgidav_app import WsgiDAVApp

from davdrive.service.locks import LockView, lock_url
from davdrive.service.types import Principal
from providers.dav_app import dav_config, wrap_dav
from providers.provider import DriveProvider, _is_home

if TYPE_CHECKING:
    from davdrive.app import App

SHARE = "/remote.php"

# The ``OC-Checksum`` types a PUT's body is verified against (``service.checksums``), advertised
# in the OCS capabilities (``checksums.supportedTypes``; the first is ``preferredUploadType``).
VERIFIED_CHECKSUM_TYPES = ("SHA1", "MD5", "Adler32")  # as the clients spell them


class NextcloudProvider(DriveProvider):
    """``/dav/files/<login>/...`` and ``/webdav/...`` under ``/remote.php``."""

    def __repr__(self) -> str:
        return "NextcloudProvider()"

    def home_len(self, parts: list[str], p: Principal, environ: dict[str, Any]) -> int:
        if parts[:1] == ["webdav"]:
            return 1
        if len(parts) >= 3 and parts[:2] == ["dav", "files"] and _is_home(parts[2], p):
            return 3
        return 0

    def home_url(self, p: Principal, environ: dict[str, Any]) -> str:
        parts = [x for x in str(environ.get("PATH_INFO", "")).split("/") if x]
        if parts[:1] == ["webdav"]:
            return quote(f"{SHARE}/webdav")
        return quote(f"{SHARE}/dav/files/{p.login}")

    def lock_home(self, p: Principal, environ: dict[str, Any]) -> str:
        return lock_url(p.login, "/")

    def get_resource_inst(self, path: str, environ: dict[str, Any]) -> Any:
        parts = self.split(path, environ)
        if not parts:
            return None  # /remote.php/ itself is nobody's home
        return super().get_resource_inst(path, environ)

    def _lock_views(self, p: Principal, environ: dict[str, Any], home: str) -> list[LockView]:
        own = LockView(home, lock_url(p.login, "/"))
        return [*super()._lock_views(p, environ, home), own]


def make_nextcloud_dav_app(app: App, **kwargs: Any) -> Callable[..., Iterable[bytes]]:
    """The WSGI callable serving ``/remote.php/...`` (the full path is passed)."""
    config = dav_config(app, **kwargs)
    config["provider_mapping"] = {SHARE: NextcloudProvider(app.drive)}
    return wrap_dav(WsgiDAVApp(config))


__all__ = ["VERIFIED_CHECKSUM_TYPES", "NextcloudProvider", "make_nextcloud_dav_app"]
