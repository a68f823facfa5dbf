"""Thin WsgiDAV resources over ``NodeInfo`` snapshots: every rule stays in the drive service.

A resource lives for one request. Getters are attribute reads on the snapshot; a folder loads its
members with one ``list_dir``; dead properties are bulk-loaded per request (one query for a
folder and its members) and cached in the WSGI environ.
"""

from __future__ import annotations

import mimetypes
import posixpath
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, BinaryIO

from lxml import etree
from wsgidav import xml_tools
from wsgidav.dav_error import (
    HTTP_BAD_REQUEST,
    HTTP_FORBIDDEN,
    HTTP_NOT_FOUND,
    HTTP_PRECONDITION_FAILED,
    DAVError,
    PRECONDITION_CODE_ProtectedProperty,
)
from wsgidav.dav_provider import DAVCollection, DAVNonCollection

from davdrive import errors
from davdrive.service.checksums import parse_oc_checksum
from davdrive.service.drive import Upload
from davdrive.service.paths import check_name
from davdrive.service.timestamps import parse_mtime
from davdrive.service.types import NodeInfo, Principal, Usage
from providers import oc_props
from providers.errors import to_dav_error

if TYPE_CHECKING:
    from providers.provider import DriveProvider

NODES_KEY = "davdrive.nodes"  # environ: share path -> NodeInfo | None (per-request cache)
PROPS_KEY = "davdrive.props"  # environ: node id -> {name: value bytes}
USAGE_KEY = "davdrive.usage"
LOCKS_KEY = "davdrive.locks"  # environ: (folder ref-URL, {lock roots at or below it})
MTIME_KEY = "davdrive.mtime"  # parsed X-OC-Mtime of this PUT
MTIME_APPLIED_KEY = "davdrive.mtime_applied"
WRITTEN_KEY = "davdrive.written"  # the file a PUT stored (its answer names it)
CREATED_KEY = "davdrive.created"  # MOVE/COPY made a new destination (201, not 204)
MAX_PROP_NAME = 512
MAX_PROP_VALUE = 64 * 1024
LOCK_PROPS = ("{DAV:}lockdiscovery", "{DAV:}supportedlock")
WIN32_NS = "{urn:schemas-microsoft-com:}"


@contextmanager
def dav_errors() -> Iterator[None]:
    """Re-raise core errors as the matching ``DAVError``."""
    try:
        yield
    except errors.DriveError as exc:
        raise to_dav_error(exc) from exc


def forget_nodes(environ: dict[str, Any]) -> None:
    """Drop the per-request node cache after a mutation."""
    environ.pop(NODES_KEY, None)


def parse_timestamp(value: Any) -> float:
    """Seconds since the epoch from a number, a decimal string or an RFC 1123 date, through the
    one timestamp rule (``service.timestamps``); 400 otherwise."""
    if not isinstance(value, int | float):
        text = str(value or "").strip()
        try:
            float(text)
            value = text
        except ValueError:
            try:
                value = parsedate_to_datetime(text).timestamp()
            except (TypeError, ValueError, IndexError):
                raise DAVError(HTTP_BAD_REQUEST, f"invalid timestamp {text!r}") from None
    try:
        return parse_mtime(value, "timestamp")
    except errors.BadRequest as exc:
        raise DAVError(HTTP_BAD_REQUEST, exc.message) from None


def _single_etag(header: str | None) -> str | None:
    """The one entity tag of an If-Match header ("*" kept), or None if absent or a list."""
    if not header:
        return None
    header = header.strip()
    if header == "*":
        return "*"
    if "," in header:
        return None  # WsgiDAV checked the list; a CAS needs exactly one version
    if header.startswith("W/"):
        header = header[2:]
    return header.strip('"')


def _expected_size(environ: dict[str, Any]) -> int | None:
    for key in ("CONTENT_LENGTH", "HTTP_X_EXPECTED_ENTITY_LENGTH"):
        raw = str(environ.get(key) or "").strip()
        if raw:
            try:
                size = int(raw)
            except ValueError:
                raise DAVError(HTTP_BAD_REQUEST, f"invalid {key}") from None
            if size < 0:
                raise DAVError(HTTP_BAD_REQUEST, f"invalid {key}")
            return size
    return None


def oc_checksum(environ: dict[str, Any]) -> tuple[str, str] | None:
    """The ``OC-Checksum`` a PUT's body must match (Nextcloud/ownCloud clients), or None;
    400 for a malformed value of a supported type."""
    header = environ.get("HTTP_OC_CHECKSUM")
    if not header:
        return None
    with dav_errors():
        return parse_oc_checksum(str(header))


_NO_PROPS: dict[str, bytes] = {}


@lru_cache(maxsize=1024)
def _type_of_extension(ext: str) -> str:
    guessed, _ = mimetypes.guess_type("x" + ext)
    return guessed or "application/octet-stream"


def content_type(path: str) -> str:
    """``mimetypes.guess_type`` of a name (octet-stream if unknown), cached by extension: a
    listing of 5,000 files asks for a handful of them. Names whose extension is a compression
    or a suffix alias (``.gz``, ``.tgz``: the type then depends on the suffix before it) are
    guessed whole."""
    ext = posixpath.splitext(path)[1]
    if ext.lower() in mimetypes.suffix_map or ext in mimetypes.encodings_map:
        guessed, _ = mimetypes.guess_type("/" + path.rsplit("/", 1)[-1])  # never a URL scheme
        return guessed or "application/octet-stream"
    return _type_of_extension(ext)


class _NodeMixin:
    """What files and folders share: snapshot getters, props, mtime, delete/move/copy."""

    node: NodeInfo | None
    dpath: str  # account-relative drive path
    environ: dict[str, Any]
    path: str
    provider: DriveProvider
    is_collection: bool

    @property
    def principal(self) -> Principal:
        return self.provider.principal(self.environ)

    @property
    def drive(self) -> Any:
        return self.provider.drive

    # -- live properties --------------------------------------------------------------------
    def get_display_name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def get_creation_date(self) -> float | None:
        return self.node.created if self.node else None

    def get_last_modified(self) -> float | None:
        return self.node.mtime if self.node else None

    def get_etag(self) -> str | None:
        return self.node.etag if self.node else None

    def support_etag(self) -> bool:
        return True

    def support_modified(self) -> bool:
        return True

    def set_last_modified(self, dest_path: str, time_stamp: Any, *, dry_run: bool) -> bool:
        """getlastmodified / Win32LastModifiedTime PROPPATCH and X-OC-Mtime → ``set_mtime``."""
        ts = parse_timestamp(time_stamp)
        if dry_run:
            return True
        with dav_errors():
            self.node = self.drive.set_mtime(self.principal, self.dpath, ts)
        return True

    # -- dead properties --------------------------------------------------------------------
    def _dead_props(self) -> dict[str, bytes]:
        if self.node is None:
            return {}
        cache = self.environ.setdefault(PROPS_KEY, {})
        if self.node.id not in cache:
            with dav_errors():
                cache.update(self.drive.get_dead_props(self.principal, [self.node.id]))
        return cache.get(self.node.id, {})

    def get_property_names(self, *, is_allprop: bool) -> list[str]:
        names = super().get_property_names(is_allprop=is_allprop)  # type: ignore[misc]
        return [*names, *(n for n in self._dead_props() if n not in oc_props.LIVE)]

    def oc_view(self) -> oc_props.OcView:
        return oc_props.OcView.of(self.environ, self.drive, self.principal)

    def get_property_value(self, name: str) -> Any:
        if name in oc_props.LIVE:  # ownCloud/Nextcloud live properties (oc_props.py)
            value = None
            if self.node is not None:
                value = self.oc_view().value(self.node, name, home_root=self.dpath == "/")
            if value is None:
                raise DAVError(HTTP_NOT_FOUND)
            return value
        if name == "{DAV:}getcontentlength" and self.is_collection:
            # Only asked by name (a folder's allprop has no length): Android wants a number.
            return "0"
        if name == "{DAV:}getetag":
            etag = self.get_etag()
            if etag is None:
                raise DAVError(HTTP_NOT_FOUND)
            return f'"{etag}"'  # RFC 4918: getetag carries the quoted entity tag
        if name == "{DAV:}lockdiscovery" and not self._maybe_locked():
            return etree.Element(name)  # known unlocked: skip one lock query per member
        if name.startswith("{DAV:}"):
            return super().get_property_value(name)  # type: ignore[misc]
        value = self._dead_props().get(name)
        if value is None:
            raise DAVError(HTTP_NOT_FOUND)
        return xml_tools.string_to_xml(value)

    def _maybe_locked(self) -> bool:
        """False only when a PROPFIND prefetch of this folder's locks shows none here."""
        scope = self.environ.get(LOCKS_KEY)
        if scope is None:
            return True
        prefix, roots = scope
        url = "/" + self.get_ref_url().strip("/")  # type: ignore[attr-defined]
        if url != prefix and not url.startswith(prefix.rstrip("/") + "/"):
            return True
        return url in roots

    def set_property_value(self, name: str, value: Any, *, dry_run: bool = False) -> Any:
        if name.startswith("{DAV:}") or name in LOCK_PROPS:
            return super().set_property_value(name, value, dry_run=dry_run)  # type: ignore[misc]
        if name in oc_props.LIVE:
            raise DAVError(HTTP_FORBIDDEN, err_condition=PRECONDITION_CODE_ProtectedProperty)
        if name == WIN32_NS + "Win32LastModifiedTime" and value is not None:
            return self.set_last_modified(self.path, value.text, dry_run=dry_run)
        if self.node is None:
            raise DAVError(HTTP_FORBIDDEN)
        if len(name) > MAX_PROP_NAME:
            raise DAVError(HTTP_FORBIDDEN, "property name too long")
        raw = etree.tostring(value) if value is not None else None
        if raw is not None and len(raw) > MAX_PROP_VALUE:
            raise DAVError(HTTP_FORBIDDEN, "property value too large")
        if dry_run:
            return True
        with dav_errors():
            self.drive.set_dead_prop(self.principal, self.node.id, name, raw)
        self.environ.get(PROPS_KEY, {}).pop(self.node.id, None)
        return True

    def remove_all_properties(self, *, recursive: bool) -> None:
        """Deleted nodes go to the trash with their properties (restorable): nothing to do."""

    # -- namespace operations ---------------------------------------------------------------
    def _check_locks(self, depth: str) -> None:
        lm = self.provider.lock_manager
        if lm is None:
            return
        lm.check_write_permission(
            url=self.get_ref_url(),  # type: ignore[attr-defined]
            depth=depth,
            token_list=self.environ.get("wsgidav.ifLockTokenList", []),
            principal=self.environ["wsgidav.user_name"],
        )

    def _drop_locks(self) -> None:
        lm = self.provider.lock_manager
        if lm is not None:
            lm.storage.delete_under(self.get_ref_url())  # type: ignore[attr-defined]

    def handle_delete(self) -> bool:
        """DELETE moves the node (and its subtree) to the trash in one transaction."""
        self._check_locks("infinity")  # WsgiDAV only checks the parent before this hook
        with dav_errors():
            self.drive.delete(self.principal, self.dpath)
        self._drop_locks()
        forget_nodes(self.environ)
        return True

    def support_recursive_delete(self) -> bool:
        return True

    def delete(self) -> None:
        with dav_errors():
            self.drive.delete(self.principal, self.dpath)
        forget_nodes(self.environ)

    def _dest(self, dest_path: str) -> str:
        return self.provider.drive_path(dest_path, self.environ)

    def handle_move(self, dest_path: str) -> bool:
        """One ``drive.move`` (O(1) for any folder); 201 vs 204 from its answer."""
        dst = self._dest(dest_path)
        overwrite = self.environ.get("HTTP_OVERWRITE", "T") == "T"
        with dav_errors():
            replaced = self.drive.move(self.principal, self.dpath, dst, overwrite=overwrite)
        self.environ[CREATED_KEY] = not replaced
        self._drop_locks()  # locks do not travel with MOVE (RFC 4918 §7.7)
        forget_nodes(self.environ)
        return True

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool:
        """``drive.copy`` shares blocks; Depth 0 on a folder copies the folder alone."""
        dst = self._dest(dest_path)
        overwrite = self.environ.get("HTTP_OVERWRITE", "T") == "T"
        p = self.principal
        with dav_errors():
            if self.is_collection and not depth_infinity:
                existing = self.drive.try_stat(p, dst)
                if existing is not None:
                    if not overwrite:
                        raise errors.PreconditionFailed("destination exists")
                    self.drive.delete(p, dst)
                self.drive.mkdir(p, dst)
                replaced = existing is not None
            else:
                replaced = self.drive.copy(p, self.dpath, dst, overwrite=overwrite)
        self.environ[CREATED_KEY] = not replaced
        forget_nodes(self.environ)
        return True

    def support_recursive_move(self, dest_path: str) -> bool:
        return True

    def move_recursive(self, dest_path: str) -> list[Any]:
        self.handle_move(dest_path)
        return []

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        if is_move:
            self.handle_move(dest_path)
        else:
            self.handle_copy(dest_path, depth_infinity=False)


class _BodyWriter:
    """The file object WsgiDAV writes a PUT body into; streams to ``Upload.write``."""

    def __init__(self, upload: Upload) -> None:
        self.upload = upload
        self.closed = False

    def write(self, data: bytes) -> None:
        with dav_errors():
            self.upload.write(data)

    def close(self) -> None:
        self.closed = True


class FileResource(_NodeMixin, DAVNonCollection):
    """A file; ``node`` is None for a PUT target that does not exist yet (nothing saved until
    the body has fully arrived)."""

    def __init__(
        self, provider: DriveProvider, path: str, dpath: str, node: NodeInfo | None, environ: dict
    ) -> None:
        DAVNonCollection.__init__(self, path, environ)
        self.provider = provider  # type: ignore[misc]
        self.dpath = dpath
        self.node = node
        self._upload: Upload | None = None
        self._writer: _BodyWriter | None = None

    def get_content_length(self) -> int | None:
        return self.node.size if self.node else 0

    def get_content_type(self) -> str:
        return content_type(self.dpath)

    def support_ranges(self) -> bool:
        return True

    def get_content(self) -> BinaryIO:
        """The bytes of the version whose length and ETag the headers carry (a PUT racing
        this GET must not mix another version's body under them)."""
        with dav_errors():
            if self.node is not None and self.node.version_id is not None:
                return self.drive.open_version(self.principal, self.node.version_id)
            return self.drive.open_reader(self.principal, self.dpath)

    def begin_write(self, *, content_type: str | None = None) -> _BodyWriter:
        """Open an upload; If-Match / If-None-Match become a compare-and-swap at commit, an
        ``OC-Checksum`` a check of the body before it."""
        env = self.environ
        checksum = oc_checksum(env)
        with dav_errors():
            self._upload = self.drive.begin_upload(
                self.principal,
                self.dpath,
                expected_etag=_single_etag(env.get("HTTP_IF_MATCH")),
                create_only=str(env.get("HTTP_IF_NONE_MATCH", "")).strip() == "*",
                declared_size=_expected_size(env),
                checksum=checksum,
            )
        self._writer = _BodyWriter(self._upload)
        return self._writer

    def end_write(self, *, with_errors: bool) -> None:
        """Commit only a complete body: a cut-off PUT keeps the previous version."""
        upload, self._upload = self._upload, None
        if upload is None:
            return
        if with_errors:
            upload.abort()
            return
        mtime = self.environ.get(MTIME_KEY)
        with dav_errors():
            self.node = upload.commit(mtime=mtime, expected_size=_expected_size(self.environ))
        self.environ[WRITTEN_KEY] = self.node
        if mtime is not None:
            self.environ[MTIME_APPLIED_KEY] = True
        forget_nodes(self.environ)


class FolderResource(_NodeMixin, DAVCollection):
    """A folder (the home folder too: ``dpath`` "/")."""

    def __init__(
        self, provider: DriveProvider, path: str, dpath: str, node: NodeInfo, environ: dict
    ) -> None:
        DAVCollection.__init__(self, path, environ)
        self.provider = provider  # type: ignore[misc]
        self.dpath = dpath
        self.node = node
        self._members: list[NodeInfo] | None = None

    def _list(self) -> list[NodeInfo]:
        if self._members is None:
            with dav_errors():
                self._members = self.drive.list_dir(self.principal, self.dpath)
            cache = self.environ.setdefault(NODES_KEY, {})
            base = self.path.rstrip("/")
            for child in self._members:
                cache[f"{base}/{child.name}"] = child
            if self.environ.get("REQUEST_METHOD") == "PROPFIND":
                lm = self.provider.lock_manager
                if lm is not None and LOCKS_KEY not in self.environ:
                    url = "/" + self.get_ref_url().strip("/")
                    locks = lm.get_url_lock_list(url, recursive=True)
                    self.environ[LOCKS_KEY] = (url, {lock["root"] for lock in locks})
                props = self.environ.setdefault(PROPS_KEY, {})
                with dav_errors():  # one query by folder, not IN lists of 5,000 ids
                    found = self.drive.properties.get_member_props(self.principal, self.node.id)
                for n in (self.node, *self._members):
                    if n.id not in props:
                        props[n.id] = found.get(n.id, _NO_PROPS)
                # computed oc: properties (folder sizes, share types) read for all at once
                self.oc_view().listed(self.node, self._members)
        return self._members

    def get_member_names(self) -> list[str]:
        return [n.name for n in self._list()]

    def get_member_list(self) -> list[_NodeMixin]:
        base = self.path.rstrip("/")
        dbase = self.dpath.rstrip("/")
        return [
            self.provider.make_resource(f"{base}/{n.name}", f"{dbase}/{n.name}", n, self.environ)
            for n in self._list()
        ]

    def get_member(self, name: str) -> Any:
        return self.provider.get_resource_inst(f"{self.path.rstrip('/')}/{name}", self.environ)

    def _usage(self) -> Usage:
        usage = self.environ.get(USAGE_KEY)
        if usage is None:
            with dav_errors():
                usage = self.drive.usage(self.principal)
            self.environ[USAGE_KEY] = usage
        return usage

    def get_used_bytes(self) -> int:
        """RFC 4331 quota-used-bytes: the account's usage (every folder shares the quota)."""
        return self._usage().used

    def get_available_bytes(self) -> int:
        return self._usage().available

    def create_empty_resource(self, name: str) -> FileResource:
        """PUT: an unsaved resource (the body commits it). LOCK: a real 0-byte file."""
        with dav_errors():
            name = check_name(name)  # the stored form (NFC): its URL keys the lock
        path = f"{self.path.rstrip('/')}/{name}"
        dpath = f"{self.dpath.rstrip('/')}/{name}"
        if self.environ.get("REQUEST_METHOD") == "PUT":
            if self.environ.get("HTTP_IF_MATCH"):
                raise DAVError(HTTP_PRECONDITION_FAILED, "If-Match on a missing resource")
            return FileResource(self.provider, path, dpath, None, self.environ)
        self._check_locks("0")  # creating a member changes a depth-0-locked parent
        with dav_errors():
            try:
                node = self.drive.write_file(self.principal, dpath, b"", create_only=True)
            except errors.PreconditionFailed:
                # A concurrent request created it first: lock that file (the lock rule then
                # answers 423 if that request holds it) rather than failing with 412.
                node = self.drive.stat(self.principal, dpath)
        forget_nodes(self.environ)
        return FileResource(self.provider, path, dpath, node, self.environ)

    def create_collection(self, name: str) -> FolderResource:
        with dav_errors():
            name = check_name(name)
        path = f"{self.path.rstrip('/')}/{name}"
        dpath = f"{self.dpath.rstrip('/')}/{name}"
        with dav_errors():
            node = self.drive.mkdir(self.principal, dpath)
        forget_nodes(self.environ)
        return FolderResource(self.provider, path, dpath, node, self.environ)


class RootResource(DAVCollection):
    """``/dav/``: lists only the caller's home; read-only."""

    def __init__(self, provider: DriveProvider, environ: dict) -> None:
        DAVCollection.__init__(self, "/", environ)
        self.provider = provider  # type: ignore[misc]
        self._created = time.time()

    def get_display_name(self) -> str:
        return ""

    def get_member_names(self) -> list[str]:
        return [self.provider.principal(self.environ).login]

    def get_member(self, name: str) -> Any:
        return self.provider.get_resource_inst("/" + name, self.environ)

    def get_member_list(self) -> list[Any]:
        home = self.get_member(self.get_member_names()[0])
        return [home] if home is not None else []

    def get_etag(self) -> None:
        return None

    def support_etag(self) -> bool:
        return False

    def prevent_locking(self) -> bool:
        return True

    def _forbidden(self, *_args: Any, **_kwargs: Any) -> Any:
        raise DAVError(HTTP_FORBIDDEN, "the DAV root is read-only")

    create_empty_resource = _forbidden
    create_collection = _forbidden
    delete = _forbidden
    handle_delete = _forbidden

    def handle_move(self, dest_path: str) -> bool:
        raise DAVError(HTTP_FORBIDDEN, "the DAV root cannot be moved")

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool:
        raise DAVError(HTTP_FORBIDDEN, "the DAV root cannot be copied")

    def set_property_value(self, name: str, value: Any, *, dry_run: bool = False) -> Any:
        raise DAVError(HTTP_FORBIDDEN)
