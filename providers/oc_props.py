"""The ownCloud/Nextcloud live properties (``http://owncloud.org/ns``, ``http://nextcloud.org/ns``)
the sync clients and mobile apps ask for in PROPFIND ``<prop>`` lists.

They are live: computed from the ``NodeInfo`` snapshot and the caller, never stored as dead
properties, refused by PROPPATCH (403). Both PROPFIND paths use this module: the resources'
``get_property_value`` (WsgiDAV's path) and the text templates of providers/propfind.py, so
they answer the same bytes. None of them is part of ``allprop`` or ``<name/>`` (those stay as
WsgiDAV and litmus know them); ``oc:favorite`` and other names stay dead properties.

* ``oc:id``: ``%08d`` of the node id + the instance id "davdrive" (Nextcloud's form: opaque,
  stable across MOVE, which keeps the node); ``oc:fileid``: the node id.
* ``oc:permissions``: from the caller's rights on the node (``NodeInfo.perms``) and its kind,
  in Nextcloud's order: ``S`` (in a share the caller received: its mount point and everything
  below it, as Nextcloud's ``FileInfo.isShared``), ``R`` (may share), ``G`` (read), ``D N V``
  (delete, rename, move: the delete right), then ``W`` (write) for a file or ``C K`` (create
  files, folders) for a folder. A mount point always has ``D N V``: the recipient may rename,
  move or decline (delete) it whatever the share's rights. ``M`` (Nextcloud: external or group
  folder storage, never a share) does not apply.
* ``oc:size``: a file's size; a folder's total (the current versions of the live files below
  it, mounted shares included), computed only when asked: one statement for a listed folder
  and all its member folders (``Properties.tree_sizes``).
* ``oc:share-types``: ``<oc:share-type>`` 0 (a user share) and/or 3 (a live link) the caller
  made on the node; one statement per listed folder (``Properties.share_types``), none for a
  link's holder or a listing with none of the caller's own nodes.
* ``oc:checksums``: a file's ``<oc:checksum>SHA256:<hex></oc:checksum>``, the SHA-256 of its
  current version that davdrive keeps anyway (the desktop client checks downloads against it
  and skips conflict copies of identical content); a folder: 404.
* ``oc:data-fingerprint``: empty, on the home root only; ``nc:has-preview``: "false";
  ``oc:downloadURL``: empty.
* ``oc:owner-id``, ``oc:owner-display-name``: the owner's login; never through a share link
  (404): a link must not reveal its owner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lxml import etree

from davdrive.service.access import Perm

if TYPE_CHECKING:
    from davdrive.service.types import NodeInfo, Principal

OC_NS = "http://owncloud.org/ns"
NC_NS = "http://nextcloud.org/ns"
INSTANCE_ID = "davdrive"
OC_KEY = "davdrive.oc"  # environ: this request's ``OcView``
VIEWS_KEY = "davdrive.views"  # environ: Drive.lock_views, read once per request by the provider

OC_ID = f"{{{OC_NS}}}id"
FILEID = f"{{{OC_NS}}}fileid"
PERMISSIONS = f"{{{OC_NS}}}permissions"
SIZE = f"{{{OC_NS}}}size"
SHARE_TYPES = f"{{{OC_NS}}}share-types"
CHECKSUMS = f"{{{OC_NS}}}checksums"
DATA_FINGERPRINT = f"{{{OC_NS}}}data-fingerprint"
DOWNLOAD_URL = f"{{{OC_NS}}}downloadURL"
OWNER_ID = f"{{{OC_NS}}}owner-id"
OWNER_NAME = f"{{{OC_NS}}}owner-display-name"
HAS_PREVIEW = f"{{{NC_NS}}}has-preview"

# Every name this module answers (also those it answers with 404): live, so PROPPATCH refuses
# them and a dead property stored under one of them earlier is never shown.
LIVE = frozenset(
    {
        OC_ID,
        FILEID,
        PERMISSIONS,
        SIZE,
        SHARE_TYPES,
        CHECKSUMS,
        DATA_FINGERPRINT,
        DOWNLOAD_URL,
        OWNER_ID,
        OWNER_NAME,
        HAS_PREVIEW,
    }
)
SHARE_TYPE = f"{{{OC_NS}}}share-type"
CHECKSUM = f"{{{OC_NS}}}checksum"
# The same value for every resource of a request (None: 404).
CONSTANT: dict[str, str | None] = {
    DOWNLOAD_URL: "",
    HAS_PREVIEW: "false",
}


def written_headers(node: NodeInfo) -> list[tuple[str, str]]:
    """What Nextcloud answers a PUT with besides the ETag: ``OC-ETag`` and ``OC-FileId`` (the
    client records the file's id and version without another PROPFIND)."""
    return [("OC-ETag", f'"{node.etag}"'), ("OC-FileId", oc_id(node.id))]


def checksum_text(node: NodeInfo) -> str | None:
    """The ``oc:checksum`` text of a file (``SHA256:<hex>``), None for a folder."""
    if node.is_dir or not node.content_hash:
        return None
    return f"SHA256:{node.content_hash}"


def oc_id(node_id: int) -> str:
    """Nextcloud's ``oc:id``: the id zero-padded to 8 digits, then the instance id."""
    return f"{node_id:08d}{INSTANCE_ID}"


_PERMS_CACHE: dict[tuple[int, bool, bool, bool], str] = {}


def permissions(perms: int, is_dir: bool, *, mount: bool = False, shared: bool = False) -> str:
    """``oc:permissions`` of a node the caller holds ``perms`` on (Perm bits); ``shared``: in
    a share the caller received, ``mount``: its mount point (shared too)."""
    key = (perms, is_dir, mount, shared)
    text = _PERMS_CACHE.get(key)
    if text is None:
        p = Perm(perms)
        out = "S" if mount or shared else ""
        if p & Perm.SHARE:
            out += "R"
        if p & Perm.READ:
            out += "G"
        if mount or p & Perm.DELETE:
            out += "DNV"
        if is_dir:
            if p & Perm.CREATE:
                out += "CK"
        elif p & Perm.WRITE:
            out += "W"
        text = _PERMS_CACHE[key] = out
    return text


class OcView:
    """What the properties need to know of the caller, for one request: the mount points of
    the shares it received and their owners (read once, and only when asked)."""

    def __init__(
        self, drive: Any, principal: Principal, known: list[tuple[str, str, str]] | None = None
    ) -> None:
        self.drive = drive
        self.principal = principal
        self._known = known  # Drive.lock_views, when the provider read them for this request
        self._mounts: list[tuple[str, str]] | None = None
        self._listing: tuple[NodeInfo, list[NodeInfo], set[int]] | None = None
        self._sizes: dict[int, int] = {}
        self._share_types: dict[int, list[int]] = {}
        self._shares_read: set[int] = set()  # folders (listed) and nodes already asked

    @classmethod
    def of(cls, environ: dict[str, Any], drive: Any, principal: Principal) -> OcView:
        view = environ.get(OC_KEY)
        if view is None or view.principal.user_id != principal.user_id:
            view = environ[OC_KEY] = cls(drive, principal, environ.get(VIEWS_KEY))
        return view

    @property
    def is_link(self) -> bool:
        return self.principal.link is not None

    def mounts(self) -> list[tuple[str, str]]:
        """``(mount point, owner login)`` of each live share received, deepest first."""
        if self._mounts is None:
            if self.is_link:
                self._mounts = []
            else:
                views = self._known
                if views is None:
                    views = self.drive.lock_views(self.principal)
                self._mounts = sorted(
                    ((view, owner) for view, owner, _base in views),
                    key=lambda m: -len(m[0]),
                )
        return self._mounts

    def is_mount(self, node: NodeInfo) -> bool:
        """Whether the node is the mount point of a share the caller received."""
        if self.is_link or node.owner_id == self.principal.user_id:
            return False
        return any(view == node.path for view, _owner in self.mounts())

    def owner(self, node: NodeInfo) -> str | None:
        """The owner's login, or None (a link's holder never learns it)."""
        if self.is_link:
            return None
        if node.owner_id == self.principal.user_id:
            return self.principal.login
        for view, owner in self.mounts():
            if node.path == view or node.path.startswith(view.rstrip("/") + "/"):
                return owner
        return None

    def permissions(self, node: NodeInfo) -> str:
        shared = not self.is_link and node.owner_id != self.principal.user_id
        mount = shared and self.is_mount(node)
        return permissions(node.perms, node.is_dir, mount=mount, shared=shared)

    def listed(self, folder: NodeInfo, members: list[NodeInfo]) -> None:
        """The folder a PROPFIND Depth 1 lists, and its members: the computed properties of
        any of them are then read for all of them at once."""
        self._listing = (folder, members, {m.id for m in members})

    def _in_listing(self, node: NodeInfo) -> tuple[NodeInfo, list[NodeInfo]] | None:
        listing = self._listing
        if listing is not None and (node.id == listing[0].id or node.id in listing[2]):
            return listing[0], listing[1]
        return None

    def folder_size(self, node: NodeInfo) -> int:
        """``oc:size`` of a folder: the total bytes below it (one statement per listing)."""
        size = self._sizes.get(node.id)
        if size is None:
            listing = self._in_listing(node)
            if listing is not None:
                found = self.drive.properties.tree_sizes(self.principal, *listing)
            else:
                found = self.drive.properties.tree_sizes(self.principal, node)
            self._sizes.update(found)
            size = self._sizes.setdefault(node.id, 0)
        return size

    def share_types(self, node: NodeInfo) -> list[int]:
        """The ``oc:share-types`` of a node: what the caller shared it with (0, 3)."""
        if self.is_link:
            return []
        listing = self._in_listing(node)
        key = listing[0].id if listing is not None else node.id
        if key not in self._shares_read:
            self._shares_read.add(key)
            if listing is not None:
                folder, members = listing
                mine = self.principal.user_id
                if folder.owner_id == mine or any(m.owner_id == mine for m in members):
                    self._share_types.update(
                        self.drive.properties.share_types(self.principal, folder, members=True)
                    )
            elif node.owner_id == self.principal.user_id:
                self._share_types.update(
                    self.drive.properties.share_types(self.principal, node, members=False)
                )
        return self._share_types.get(node.id, [])

    def share_types_inner(self, node: NodeInfo, prefix: str) -> str:
        """The ``<share-type>`` elements of ``oc:share-types`` as text, the ownCloud namespace
        written with ``prefix`` (the PROPFIND fast path's templates)."""
        return "".join(
            f"<{prefix}:share-type>{kind}</{prefix}:share-type>" for kind in self.share_types(node)
        )

    def share_types_value(self, node: NodeInfo) -> Any:
        """``oc:share-types`` for WsgiDAV: an element with one ``<oc:share-type>`` per kind,
        or "" (written, as before, as an empty element with an end tag)."""
        kinds = self.share_types(node)
        if not kinds:
            return ""
        element = etree.Element(SHARE_TYPES)
        for kind in kinds:
            etree.SubElement(element, SHARE_TYPE).text = str(kind)
        return element

    def value(self, node: NodeInfo, name: str, *, home_root: bool) -> Any:
        """The text (or element) of one of ``LIVE`` for ``node``, or None for 404."""
        if name in CONSTANT:
            return CONSTANT[name]
        if name == OC_ID:
            return oc_id(node.id)
        if name == FILEID:
            return str(node.id)
        if name == PERMISSIONS:
            return self.permissions(node)
        if name == SIZE:
            return str(self.folder_size(node) if node.is_dir else node.size)
        if name == SHARE_TYPES:
            return self.share_types_value(node)
        if name == CHECKSUMS:
            text = checksum_text(node)
            if text is None:
                return None
            element = etree.Element(CHECKSUMS)
            etree.SubElement(element, CHECKSUM).text = text
            return element
        if name == DATA_FINGERPRINT:
            return "" if home_root and not self.is_link else None
        if name in (OWNER_ID, OWNER_NAME):
            return self.owner(node)
        return None


__all__ = [
    "CONSTANT",
    "LIVE",
    "NC_NS",
    "OC_NS",
    "OcView",
    "checksum_text",
    "oc_id",
    "permissions",
]
