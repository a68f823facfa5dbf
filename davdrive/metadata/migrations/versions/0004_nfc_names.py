"""nfc names: every stored name in Unicode NFC

Revision ID: 0004
Revises: 0003

From this revision on the service stores and compares names in NFC (``service/paths.py``): a
name sent in NFD (macOS) and the same name in NFC are one file. A store written before may hold
NFD names, some of them beside a visually identical NFC twin. This revision:

* renames every node whose name is not NFC to its NFC form. When that name is taken by a live
  sibling (an NFC twin, or another spelling that normalises the same), the node is renamed
  ``<stem> (2).<ext>``, ``(3)`` ... instead (folders: ``<name> (2)``); the oldest spelling
  without a twin gets the plain name. Each such rename is logged as a warning; trashed nodes
  never clash (live names only are unique). ``trashed_path`` is normalised too;
* journals each rename of a node in the live tree as a ``moved`` change (from the old path to
  the new one) and touches its folder, as a MOVE does, so sync clients and folder ETags follow;
* normalises ``upload_session.path`` (a resumable upload finishes at the NFC path);
* re-keys WebDAV locks whose ref-URL is not NFC to the NFC URL, and drops those on (or below) a
  node renamed with a suffix: that URL now names its twin (a MOVE drops locks the same way).

Changes already journaled keep the paths they were written with. Idempotent: a second run finds
nothing to do. There is no downgrade (NFC names are valid under 0003).
"""

from __future__ import annotations

import logging
import time
import unicodedata
from typing import NamedTuple
from urllib.parse import quote, unquote

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

FORM = "NFC"
MAX_NAME_BYTES = 255
BATCH = 20_000
DAV_ROOT = "/dav"


def nfc(text: str) -> str:
    """``text`` in NFC (ASCII and NFC text unchanged)."""
    if text.isascii() or unicodedata.is_normalized(FORM, text):
        return text
    return unicodedata.normalize(FORM, text)


def nfc_path(path: str) -> str:
    """A "/"-separated path normalised component by component."""
    return "/".join(nfc(part) for part in path.split("/"))


class Row(NamedTuple):
    """One node as the rename needs it (a NamedTuple: Alembic loads this module outside
    ``sys.modules``, where dataclasses cannot resolve their annotations)."""

    id: int
    user_id: int
    parent_id: int | None
    name: str
    is_dir: bool
    trashed: bool
    version_id: int | None


def upgrade() -> None:
    bind = op.get_bind()
    odd = _non_nfc_nodes(bind)
    tree = _Tree(bind)
    renames = _plan_renames(bind, odd)
    suffixed = {node_id for node_id, (_, clash) in renames.items() if clash}
    _locks(bind, tree, suffixed)
    _apply(bind, tree, odd, renames)
    _trashed_paths(bind)
    _upload_paths(bind)


def downgrade() -> None:
    """Nothing to undo: NFC names are valid under 0003."""


# -- which nodes, and their new names -----------------------------------------------------------
def _non_nfc_nodes(bind: sa.Connection) -> list[Row]:
    """Every node whose name is not NFC, in id order (scanned in batches of ids and names)."""
    ids: list[int] = []
    after = 0
    while True:
        rows = bind.execute(
            sa.text("SELECT id, name FROM node WHERE id > :after ORDER BY id LIMIT :n"),
            {"after": after, "n": BATCH},
        ).all()
        if not rows:
            break
        ids += [node_id for node_id, name in rows if nfc(name) != name]
        after = rows[-1][0]
    out: list[Row] = []
    for node_id in ids:
        r = bind.execute(
            sa.text(
                "SELECT id, user_id, parent_id, name, is_dir, trashed_at, current_version_id "
                "FROM node WHERE id = :id"
            ),
            {"id": node_id},
        ).one()
        out.append(Row(r[0], r[1], r[2], r[3], bool(r[4]), r[5] is not None, r[6]))
    return out


def _plan_renames(bind: sa.Connection, odd: list[Row]) -> dict[int, tuple[str, bool]]:
    """node id -> (new name, whether a suffix was needed). Live names stay unique per folder:
    names already NFC keep theirs, then the oldest non-NFC spelling gets the plain NFC name."""
    plan: dict[int, tuple[str, bool]] = {}
    by_parent: dict[int | None, list[Row]] = {}
    for row in odd:
        if row.trashed:  # a trashed top may share its name with a live sibling
            plan[row.id] = (nfc(row.name), False)
        else:
            by_parent.setdefault(row.parent_id, []).append(row)
    for parent_id, rows in by_parent.items():
        taken = set(
            bind.execute(
                sa.text("SELECT name FROM node WHERE parent_id = :p AND trashed_at IS NULL"),
                {"p": parent_id},
            ).scalars()
        )
        for row in sorted(rows, key=lambda r: r.id):
            name = nfc(row.name)
            clash = name in taken
            if clash:
                name = _free_name(name, row.is_dir, taken)
            taken.add(name)
            plan[row.id] = (name, clash)
    return plan


def _free_name(name: str, is_dir: bool, taken: set[str]) -> str:
    """``name`` with the first free `` (n)`` (n >= 2) before a file's extension, the stem
    shortened when the result would pass 255 bytes."""
    stem, dot, ext = name.rpartition(".")
    if not (dot and stem and not is_dir):
        stem, ext = name, ""
    tail = f".{ext}" if ext else ""
    n = 2
    while True:
        suffix = f" ({n}){tail}"
        short = stem
        while short and len((short + suffix).encode("utf-8")) > MAX_NAME_BYTES:
            short = short[:-1]
        candidate = nfc(short + suffix)
        if candidate not in taken and len(candidate.encode("utf-8")) <= MAX_NAME_BYTES:
            return candidate
        n += 1


# -- paths ----------------------------------------------------------------------------------------
class _Tree:
    """Node names and parents read on demand (and kept current while renaming)."""

    def __init__(self, bind: sa.Connection) -> None:
        self.bind = bind
        self.rows: dict[int, tuple[int | None, str, bool]] = {}

    def get(self, node_id: int) -> tuple[int | None, str, bool]:
        """(parent id, name, trashed) of a node."""
        row = self.rows.get(node_id)
        if row is None:
            r = self.bind.execute(
                sa.text("SELECT parent_id, name, trashed_at FROM node WHERE id = :id"),
                {"id": node_id},
            ).one()
            row = self.rows[node_id] = (r[0], r[1], r[2] is not None)
        return row

    def rename(self, node_id: int, name: str) -> None:
        parent_id, _, trashed = self.get(node_id)
        self.rows[node_id] = (parent_id, name, trashed)

    def live_parts(self, node_id: int) -> list[str] | None:
        """Components of the node's path if it and its ancestors are live, else None."""
        parts: list[str] = []
        cur: int | None = node_id
        while cur is not None:
            parent_id, name, trashed = self.get(cur)
            if trashed:
                return None
            if parent_id is not None:
                parts.append(name)
            cur = parent_id
        return parts[::-1]

    def child(self, parent_id: int, name: str) -> int | None:
        """The live child of that exact name, as stored before this revision renames it."""
        return self.bind.execute(
            sa.text(
                "SELECT id FROM node WHERE parent_id = :p AND name = :n AND trashed_at IS NULL"
            ),
            {"p": parent_id, "n": name},
        ).scalar()


# -- renames, journal, folders --------------------------------------------------------------------
def _apply(
    bind: sa.Connection, tree: _Tree, odd: list[Row], renames: dict[int, tuple[str, bool]]
) -> None:
    """Rename ancestors before descendants, so each journaled ``from_path`` is the path the
    node had right before its own rename."""
    now = time.time()
    depth = {row.id: len(tree.live_parts(row.id) or ()) for row in odd}
    seqs: dict[int, int] = {}
    touched: set[int] = set()
    plain = 0
    for row in sorted(odd, key=lambda r: (depth[r.id], r.id)):
        name, clash = renames[row.id]
        old_parts = tree.live_parts(row.id)
        bind.execute(
            sa.text("UPDATE node SET name = :name WHERE id = :id"), {"name": name, "id": row.id}
        )
        tree.rename(row.id, name)
        if clash:
            log.warning(
                "node %s of user id %s: %r is %r in NFC, which its folder already holds: "
                "renamed to %r",
                row.id,
                row.user_id,
                row.name,
                nfc(row.name),
                name,
            )
        else:
            plain += 1
            log.info("node %s of user id %s: %r renamed to its NFC form", row.id, row.user_id, name)
        if old_parts is None:
            continue  # in the trash: invisible to sync clients
        seq = seqs.get(row.user_id)
        if seq is None:
            seq = bind.execute(
                sa.text("SELECT change_seq FROM users WHERE id = :u"), {"u": row.user_id}
            ).scalar_one()
        seqs[row.user_id] = seq = seq + 1
        bind.execute(
            sa.text(
                "INSERT INTO change (user_id, seq, node_id, kind, path, from_path, version_id, "
                "device_id, is_dir, at) VALUES (:u, :seq, :node, 'moved', :path, :from_path, "
                ":version, NULL, :is_dir, :at)"
            ),
            {
                "u": row.user_id,
                "seq": seq,
                "node": row.id,
                "path": "/" + "/".join([*old_parts[:-1], name]),
                "from_path": "/" + "/".join(old_parts),
                "version": row.version_id,
                "is_dir": row.is_dir,
                "at": now,
            },
        )
        if row.parent_id is not None:
            touched.add(row.parent_id)
    for user_id, seq in seqs.items():
        bind.execute(
            sa.text("UPDATE users SET change_seq = :seq WHERE id = :u"), {"seq": seq, "u": user_id}
        )
    for folder_id in touched:  # a folder's ETag follows its mtime (core.touch)
        mtime = bind.execute(
            sa.text("SELECT mtime FROM node WHERE id = :id"), {"id": folder_id}
        ).scalar_one()
        bind.execute(
            sa.text("UPDATE node SET mtime = :m WHERE id = :id"),
            {"m": max(now, mtime + 0.001), "id": folder_id},
        )
    if plain:
        log.warning("%d name(s) written in another Unicode form renamed to NFC", plain)


def _trashed_paths(bind: sa.Connection) -> None:
    rows = bind.execute(
        sa.text("SELECT id, trashed_path FROM node WHERE trashed_path IS NOT NULL")
    ).all()
    for node_id, path in rows:
        if nfc_path(path) != path:
            bind.execute(
                sa.text("UPDATE node SET trashed_path = :p WHERE id = :id"),
                {"p": nfc_path(path), "id": node_id},
            )


def _upload_paths(bind: sa.Connection) -> None:
    for sid, path in bind.execute(sa.text("SELECT id, path FROM upload_session")).all():
        if nfc_path(path) != path:
            bind.execute(
                sa.text("UPDATE upload_session SET path = :p WHERE id = :id"),
                {"p": nfc_path(path), "id": sid},
            )


# -- WebDAV locks ---------------------------------------------------------------------------------
def _locks(bind: sa.Connection, tree: _Tree, suffixed: set[int]) -> None:
    """Re-key locks on a non-NFC ref-URL ("/dav/<login>/<path>", percent-encoded) to the NFC
    URL; drop those whose URL reaches a node that gets a suffix (resolved by the exact names
    stored before this revision, so it runs before the renames)."""
    for token, root in bind.execute(sa.text("SELECT token, root FROM dav_lock")).all():
        path = unquote(root)
        if nfc_path(path) == path:
            continue
        if _reaches(bind, tree, path, suffixed):
            log.warning("WebDAV lock on %s dropped: the node there was renamed", path)
            bind.execute(sa.text("DELETE FROM dav_lock WHERE token = :t"), {"t": token})
        else:
            bind.execute(
                sa.text("UPDATE dav_lock SET root = :r WHERE token = :t"),
                {"r": quote(nfc_path(path)), "t": token},
            )


def _reaches(bind: sa.Connection, tree: _Tree, url_path: str, suffixed: set[int]) -> bool:
    """Whether a lock URL path walks through a node in ``suffixed``."""
    parts = [p for p in url_path.split("/") if p]
    if len(parts) < 2 or "/" + parts[0] != DAV_ROOT:
        return False
    node_id = bind.execute(
        sa.text(
            "SELECT node.id FROM node JOIN users ON users.id = node.user_id "
            "WHERE users.login = :login AND node.parent_id IS NULL"
        ),
        {"login": parts[1].lower()},
    ).scalar()
    for name in parts[2:]:
        if node_id is None:
            return False
        node_id = tree.child(node_id, name)
        if node_id in suffixed:
            return True
    return False
