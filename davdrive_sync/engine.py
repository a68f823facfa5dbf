"""One sync pass: scan the local folder, bring the server's tree up to date from the change
journal, reconcile both against the synced tree (three-way, keyed by file id), apply.

A pass is a loop of *rounds*. Each round plans from fresh snapshots and applies; every action
re-checks its precondition (the local file still as scanned, ``base_rev``/``if_rev`` on the
server) and, when it no longer holds, is left to the next round. The pass has converged when a
round finds nothing to do. Moves are applied in rounds of their own (a moved folder carries its
members, so they are planned again after it).

Rules (see docs/SYNC.md): the server's version wins the name in a conflict and the local
content is kept as a "conflicted copy" and uploaded; a file edited on one side and deleted on
the other is resurrected; a pass that would delete too much stops unless forced.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from davdrive.protocol import Block, MiB, block_id, file_blocks
from davdrive_sync.remote import (
    Conflict,
    CursorExpired,
    Node,
    NotFound,
    PreconditionFailed,
    Remote,
    RemoteError,
)
from davdrive_sync.state import META_DIR, Config, State, Synced, iter_rel_parents, meta_dir

log = logging.getLogger("davdrive_sync")

DEFAULT_IGNORES = [
    f"/{META_DIR}/",
    "*~",
    ".#*",
    "*.swp",
    ".~lock.*#",
    "~$*",
    ".DS_Store",
    "Thumbs.db",
    "*.tmp",
    "*.part",
]
IGNORE_FILE = ".davdriveignore"
MAX_ROUNDS = 30
PARALLEL = 4
PROGRESS_MIN = 8 * MiB
FULL_RELIST_OVER = 200  # touched paths in one catch-up: list everything instead


class SyncError(Exception):
    """A pass could not finish (the message says why and what to do)."""


class GuardTripped(SyncError):
    """The pass would delete more than the guard allows."""


class _Stale(Exception):
    """A precondition no longer holds; the next round plans again."""


def guard_verdict(deletes: int, total: int, cfg: Config) -> bool:
    """True when ``deletes`` of ``total`` synced files is more than the guard lets through:
    more than ``guard_max``, or at least ``guard_min`` and more than ``guard_ratio`` of them."""
    return deletes > cfg.guard_max or (
        deletes >= cfg.guard_min and deletes > cfg.guard_ratio * max(1, total)
    )


@contextlib.contextmanager
def _workers() -> Iterator[ThreadPoolExecutor]:
    """``PARALLEL`` threads for block transfers. When the caller fails or is stopped (a signal
    raises in the main thread), queued transfers are dropped and only those in flight (at most
    ``PARALLEL`` blocks) are waited for."""
    pool = ThreadPoolExecutor(PARALLEL)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


@dataclass(frozen=True)
class LocalEntry:
    rel: str
    is_dir: bool
    ino: int
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class RNode:
    """A remote node under the synced folder, with its local-relative path."""

    rel: str
    node: Node

    @property
    def id(self) -> str:
        return self.node.id


@dataclass
class Stats:
    uploaded: int = 0
    downloaded: int = 0
    moved: int = 0
    deleted_local: int = 0
    deleted_remote: int = 0
    folders: int = 0
    conflicts: list[str] = field(default_factory=list)
    bytes_up: int = 0
    bytes_down: int = 0
    rounds: int = 0

    def summary(self) -> str:
        return (
            f"{self.uploaded} up, {self.downloaded} down, {self.moved} moved, "
            f"{self.deleted_local + self.deleted_remote} deleted, {self.folders} folders, "
            f"{len(self.conflicts)} conflicts ({self.bytes_up} B sent, "
            f"{self.bytes_down} B received in blocks)"
        )

    def busy(self) -> bool:
        return any((self.uploaded, self.downloaded, self.moved, self.deleted_local)) or any(
            (self.deleted_remote, self.folders, self.conflicts)
        )


class Ignore:
    """Default patterns plus the folder's ``.davdriveignore`` (gitignore syntax)."""

    def __init__(self, root: Path) -> None:
        self.path = root / IGNORE_FILE
        self._mtime: float | None = -1.0
        self.spec = pathspec.GitIgnoreSpec.from_lines(DEFAULT_IGNORES)

    def refresh(self) -> None:
        try:
            mtime: float | None = self.path.stat().st_mtime
        except OSError:
            mtime = None
        if mtime == self._mtime:
            return
        self._mtime = mtime
        lines = list(DEFAULT_IGNORES)
        if mtime is not None:
            lines += self.path.read_text(errors="replace").splitlines()
        self.spec = pathspec.GitIgnoreSpec.from_lines(lines)

    def __call__(self, rel: str, is_dir: bool) -> bool:
        return self.spec.match_file(rel + "/" if is_dir else rel)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(MiB):
            h.update(data)
    return h.hexdigest()


def conflict_name(rel: str, device: str, is_dir: bool = False) -> str:
    """``dir/name (conflicted copy <device> YYYY-MM-DD HHMMSS).ext``."""
    head, _, name = rel.rpartition("/")
    stem, ext = name, ""
    if not is_dir and "." in name.lstrip("."):
        i = name.rindex(".")
        stem, ext = name[:i], name[i:]
    stamp = time.strftime("%Y-%m-%d %H%M%S")
    new = f"{stem} (conflicted copy {device} {stamp}){ext}"
    return f"{head}/{new}" if head else new


def _under(rel: str, prefix: str) -> bool:
    return rel == prefix or rel.startswith(prefix + "/")


class Engine:
    """Synchronizes one local folder with one remote folder."""

    def __init__(
        self,
        local: Path,
        cfg: Config,
        remote: Remote,
        state: State,
        *,
        force: bool = False,
        progress: bool = False,
        confirm: Callable[[str], bool] | None = None,
    ) -> None:
        self.local = local
        self.cfg = cfg
        self.remote = remote
        self.state = state
        self.force = force
        self.confirm = confirm  # asks the user at the delete guard (``once`` on a terminal)
        self.progress = progress
        root = "/" + cfg.remote_path.strip("/")
        self.root = "/" if root == "/" else root
        self.ignore = Ignore(local)
        self.tmp = meta_dir(local) / "tmp"
        self.warned: set[str] = set()
        self.unreadable: set[str] = set()  # found by the last scan: left alone on both sides
        self.stats = Stats()
        self._hashes: dict[str, str] = {}
        self._known_dirs: set[str] = set()
        self.cursor: str | None = state.get("cursor")  # read by the long-poll thread

    # -- paths ------------------------------------------------------------------------------------
    def rpath(self, rel: str) -> str:
        return f"/{rel}" if self.root == "/" else f"{self.root}/{rel}"

    def rel_of(self, path: str) -> str | None:
        if self.root == "/":
            rel = path.strip("/")
            return rel or None
        if path.startswith(self.root + "/"):
            return path[len(self.root) + 1 :].strip("/") or None
        return None

    def abs(self, rel: str) -> Path:
        return self.local / rel

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            log.warning(message)

    # -- the pass ---------------------------------------------------------------------------------
    def sync(self) -> Stats:
        """Rounds until one finds nothing to do; ``SyncError`` when that does not happen."""
        self.stats = Stats()
        self.clean_tmp()
        self.remote.check_protocol()
        for _ in range(MAX_ROUNDS):
            self.stats.rounds += 1
            if self._round() == 0:
                self.state.note_pass(self.stats.summary())
                return self.stats
        raise SyncError(
            f"did not converge after {MAX_ROUNDS} rounds (files changing while syncing, or "
            "errors above); run again"
        )

    def clean_tmp(self) -> None:
        """Empty ``.davdrive-sync/tmp`` (downloads that did not finish; only while holding the
        folder lock)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        for p in self.tmp.iterdir():
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)

    # -- remote tree ------------------------------------------------------------------------------
    def refresh_remote(self) -> dict[str, Node]:
        """The server's tree (id → node), current as of now: the stored copy updated from the
        journal, or a full listing on the first pass and after a 410."""
        cursor = self.state.get("cursor")
        if cursor is None:
            return self._full_listing()
        mirror = self.state.remote()
        touched: set[str] = set()
        try:
            for page, after in self.remote.changes(cursor):
                cursor = after
                for c in page:
                    if c["kind"] in ("pinned", "unpinned", "props_changed", "upload_pending"):
                        continue
                    touched.add(c["path"])
                    if c.get("from_path"):
                        touched.add(c["from_path"])
        except CursorExpired:
            log.warning("the server's journal no longer reaches our cursor: listing everything")
            return self._full_listing()
        if not touched:
            return mirror
        if len(touched) > FULL_RELIST_OVER or any(
            t == "/" or self.root.startswith(t.rstrip("/") + "/") for t in touched
        ):
            return self._full_listing()
        # Each touched path is refreshed to its current state (the journal says where to look;
        # the server says what is there now), ancestors covering their descendants.
        tops = sorted(touched, key=lambda p: p.count("/"))
        done: list[str] = []
        for p in tops:
            if self.rel_of(p) is None or any(_under(p, d) for d in done):
                continue
            done.append(p)
            self._refresh_path(mirror, p)
        self.state.save_remote(mirror.values(), cursor)
        return mirror

    def _refresh_path(self, mirror: dict[str, Node], path: str) -> None:
        for nid in [i for i, n in mirror.items() if _under(n.path, path)]:
            del mirror[nid]
        meta = self.remote.metadata(path)
        if meta is None or meta.get("status") == "pending" and meta.get("rev") is None:
            return
        node = Node.from_json(meta)
        if node.is_dir:
            nodes, _ = self.remote.list_tree(path)
            for n in [node, *nodes]:
                self._put_mirror(mirror, n)
        else:
            self._put_mirror(mirror, node)

    @staticmethod
    def _put_mirror(mirror: dict[str, Node], n: Node) -> None:
        if not n.is_dir and n.rev is None:
            return  # an upload in progress: not a file yet
        old = mirror.get(n.id)
        if old is not None and old.path != n.path:
            for nid in [i for i, m in mirror.items() if _under(m.path, old.path)]:
                del mirror[nid]
        mirror[n.id] = n

    def _full_listing(self) -> dict[str, Node]:
        try:
            nodes, cursor = self.remote.list_tree(self.root)
        except NotFound as exc:
            raise SyncError(f"the remote folder {self.root} does not exist on the server") from exc
        mirror: dict[str, Node] = {}
        for n in nodes:
            if n.path != self.root:
                self._put_mirror(mirror, n)
        self.state.save_remote(mirror.values(), cursor)
        return mirror

    # -- local tree -------------------------------------------------------------------------------
    def scan(self) -> dict[str, LocalEntry]:
        """Every regular file and folder below the root that is not ignored.

        Symbolic links, devices, FIFOs and sockets are skipped with a warning. Unreadable files
        and folders are skipped with a warning too, and recorded in ``self.unreadable``: the
        round leaves them alone on both sides (an unreadable synced file is not a deleted one).
        """
        self.ignore.refresh()
        self.unreadable = set()
        out: dict[str, LocalEntry] = {}
        stack = [""]
        while stack:
            top = stack.pop()
            try:
                it = list(os.scandir(self.abs(top) if top else self.local))
            except OSError as exc:
                if not top:
                    raise SyncError(f"cannot read the synced folder {self.local}: {exc}") from exc
                self._warn_once(top, f"skipping unreadable folder {top}: {exc}")
                out.pop(top, None)
                self.unreadable.add(top)
                continue
            for e in it:
                rel = f"{top}/{e.name}" if top else e.name
                if top == "" and e.name == META_DIR:
                    continue
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError as exc:
                    self._warn_once(rel, f"skipping {rel}: {exc}")
                    self.unreadable.add(rel)
                    continue
                is_dir = stat.S_ISDIR(st.st_mode)
                if self.ignore(rel, is_dir):
                    continue
                if stat.S_ISLNK(st.st_mode):
                    self._warn_once(rel, f"skipping symbolic link {rel}")
                    continue
                if not is_dir and not stat.S_ISREG(st.st_mode):
                    self._warn_once(rel, f"skipping {rel}: not a regular file")
                    continue
                if not os.access(e.path, os.R_OK | (os.X_OK if is_dir else 0)):
                    self._warn_once(rel, f"skipping unreadable {rel} (left as it is)")
                    self.unreadable.add(rel)
                    continue
                out[rel] = LocalEntry(rel, is_dir, st.st_ino, st.st_size, st.st_mtime_ns)
                if is_dir:
                    stack.append(rel)
        return out

    def _is_unreadable(self, rel: str) -> bool:
        return any(_under(rel, u) for u in self.unreadable)

    def _hash(self, rel: str) -> str:
        if rel not in self._hashes:
            self._hashes[rel] = sha256_file(self.abs(rel))
        return self._hashes[rel]

    def _local_changed(self, s: Synced, le: LocalEntry) -> bool:
        if (le.ino, le.size, le.mtime_ns) == (s.ino, s.lsize, s.lmtime_ns):
            return False
        try:
            changed = self._hash(le.rel) != s.content_hash
        except OSError:
            return False  # vanished or unreadable: the next round sees it
        if not changed:  # touched, same content: remember the new stat
            s.ino, s.lsize, s.lmtime_ns = le.ino, le.size, le.mtime_ns
            self.state.put_synced(s)
        return changed

    # -- one round --------------------------------------------------------------------------------
    def _round(self) -> int:
        self._hashes = {}
        mirror = self.refresh_remote()
        self.cursor = self.state.get("cursor")
        self.ignore.refresh()
        remote: dict[str, RNode] = {}
        for n in mirror.values():
            rel = self.rel_of(n.path)
            if rel is not None and not self.ignore(rel, n.is_dir):
                remote[n.id] = RNode(rel, n)
        local = self.scan()
        synced = {i: s for i, s in self.state.synced().items() if not self.ignore(s.rel, s.is_dir)}
        if self.unreadable:
            # what cannot be read here is neither deleted nor replaced, on either side
            held = {i for i, s in synced.items() if self._is_unreadable(s.rel)}
            held |= {i for i, r in remote.items() if self._is_unreadable(r.rel)}
            synced = {i: s for i, s in synced.items() if i not in held}
            remote = {i: r for i, r in remote.items() if i not in held}
        self._known_dirs = {r.rel for r in remote.values() if r.node.is_dir}

        loc = self._locate(local, synced)
        moves = self._moves(synced, remote, loc)
        if moves:
            return self._apply_moves(moves, synced)
        return self._reconcile(local, synced, remote, loc)

    def _locate(
        self, local: dict[str, LocalEntry], synced: dict[str, Synced]
    ) -> dict[str, str | None]:
        """Where each synced node is locally now: its path, where it moved (same inode, or the
        same content as a file that vanished), or None (deleted)."""
        loc: dict[str, str | None] = {}
        claimed: set[str] = set()
        for s in synced.values():
            le = local.get(s.rel)
            if le is not None and le.is_dir == s.is_dir:
                loc[s.id] = s.rel
                claimed.add(s.rel)
        unclaimed = [r for r in local if r not in claimed]
        by_ino = {local[r].ino: r for r in unclaimed}
        for s in sorted(synced.values(), key=lambda s: s.rel):
            if s.id in loc:
                continue
            loc[s.id] = None
            cand = by_ino.get(s.ino) if s.ino else None
            if cand is not None and cand not in claimed and local[cand].is_dir == s.is_dir:
                loc[s.id] = cand
                claimed.add(cand)
                continue
            if s.is_dir or s.content_hash is None:
                continue
            for rel in unclaimed:
                le = local[rel]
                if rel in claimed or le.is_dir or le.size != s.size:
                    continue
                try:
                    same = self._hash(rel) == s.content_hash
                except OSError:
                    continue
                if same:
                    loc[s.id] = rel
                    claimed.add(rel)
                    break
        return loc

    def _moves(
        self, synced: dict[str, Synced], remote: dict[str, RNode], loc: dict[str, str | None]
    ) -> list[tuple[Synced, str, RNode]]:
        out = []
        for s in synced.values():
            l_rel, r = loc[s.id], remote.get(s.id)
            if l_rel is None or r is None:
                continue
            if l_rel != s.rel or r.rel != s.rel:
                if l_rel == r.rel:  # both moved to the same place (or a move we made)
                    self.state.rename_synced(s.rel, l_rel)
                    continue
                out.append((s, l_rel, r))
        return sorted(out, key=lambda m: m[0].rel.count("/"))

    def _apply_moves(self, moves: list[tuple[Synced, str, RNode]], synced: dict) -> int:
        done = 0
        busy: list[str] = []
        for s, l_rel, r in moves:
            if any(_under(p, b) or _under(b, p) for p in (s.rel, l_rel, r.rel) for b in busy):
                continue  # planned again once the folder it was in has moved
            busy += [s.rel, l_rel, r.rel]
            try:
                if r.rel != s.rel:  # moved on the server (it wins when both moved): rename here
                    self._rename_local(s, l_rel, r.rel, synced)
                else:
                    self._move_remote(s, l_rel, r)
                done += 1
                self.stats.moved += 1
            except _Stale as exc:
                log.debug("move deferred: %s", exc)
                done += 1
        return done

    def _rename_local(self, s: Synced, src: str, dst: str, synced: dict) -> None:
        log.info("move here: %s -> %s", src, dst)
        if os.path.lexists(self.abs(dst)):
            if any(x.rel == dst for x in synced.values() if x.id != s.id):
                raise _Stale(f"{dst} is taken by another synced item")
            self._move_aside(dst)
        self.abs(dst).parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.abs(src), self.abs(dst))
        self.state.rename_synced(s.rel, dst)

    def _move_remote(self, s: Synced, dst: str, r: RNode) -> None:
        log.info("move on server: %s -> %s", s.rel, dst)
        self._ensure_remote_parents(dst)
        try:
            self.remote.move(r.node.path, self.rpath(dst))
        except PreconditionFailed:
            # something else already has that name on the server: it keeps it
            self._move_aside(dst)
            return
        except (NotFound, Conflict) as exc:
            raise _Stale(str(exc)) from exc
        self.state.rename_synced(s.rel, dst)

    def _move_aside(self, rel: str) -> str:
        """Rename a local file or folder to its conflicted-copy name; the new name."""
        is_dir = self.abs(rel).is_dir()
        new = conflict_name(rel, self.cfg.device, is_dir)
        n = 2
        while os.path.lexists(self.abs(new)):
            base = conflict_name(rel, self.cfg.device, is_dir)
            stem, dot, ext = base.rpartition(".") if not is_dir and "." in base else (base, "", "")
            new = f"{stem} {n}{dot}{ext}" if dot else f"{base} {n}"
            n += 1
        os.rename(self.abs(rel), self.abs(new))
        log.warning("conflict: local %s kept as %s", rel, new)
        self.stats.conflicts.append(new)
        return new

    # -- reconciliation ---------------------------------------------------------------------------
    def _reconcile(
        self,
        local: dict[str, LocalEntry],
        synced: dict[str, Synced],
        remote: dict[str, RNode],
        loc: dict[str, str | None],
    ) -> int:
        actions: list[tuple[str, Callable[[], None]]] = []  # (kind, run)
        local_deletes: list[Synced] = []
        remote_deletes: list[Synced] = []
        local_rmdirs: list[Synced] = []
        remote_rmdirs: list[tuple[Synced, RNode]] = []

        for s in sorted(synced.values(), key=lambda s: s.rel):
            l_rel, r = loc[s.id], remote.get(s.id)
            le = local.get(l_rel) if l_rel else None
            if le is None and r is None:
                self.state.forget(s.id)
            elif r is None:  # gone from the server
                if s.is_dir:
                    if l_rel == s.rel:
                        local_rmdirs.append(s)
                    else:
                        self.state.forget(s.id)
                elif l_rel != s.rel or self._local_changed(s, le):
                    log.info("kept (edited here, deleted on the server): %s", l_rel)
                    actions.append(("up", self._upload_fn(le.rel, None, s.id)))
                else:
                    local_deletes.append(s)
            elif le is None:  # gone here
                if s.is_dir:
                    remote_rmdirs.append((s, r))
                elif r.node.rev != s.rev or r.rel != s.rel:
                    log.info("restored (edited on the server, deleted here): %s", r.rel)
                    actions.append(("down", self._download_fn(r, None)))
                else:
                    remote_deletes.append(s)
            elif l_rel != s.rel or r.rel != s.rel or s.is_dir:
                continue
            else:
                lch = self._local_changed(s, le)
                rch = r.node.rev != s.rev
                if lch and rch:
                    if self._hash(le.rel) == r.node.content_hash:
                        self._record_file(r, le)
                    else:
                        actions.append(("conflict", self._conflict_fn(r, le)))
                elif lch:
                    actions.append(("up", self._upload_fn(le.rel, s.rev, s.id)))
                elif rch:
                    if r.node.content_hash == s.content_hash:
                        self._record_file(r, le, s.blocks)
                    else:
                        actions.append(("down", self._download_fn(r, le)))

        # a folder deleted here goes to the server's trash only with everything in it
        doomed = {s.id for s in remote_deletes}
        for s, r in sorted(remote_rmdirs, key=lambda x: -x[0].rel.count("/")):
            inside = [x for x in remote.values() if _under(x.rel, s.rel) and x.id != s.id]
            if all(x.id in doomed for x in inside):
                doomed.add(s.id)
            else:
                actions.append(("mkdir", self._mkdir_fn(r)))
        remote_dirs_deleted = [(s, r) for s, r in remote_rmdirs if s.id in doomed]

        # untracked on either side
        claimed = {v for v in loc.values() if v}
        tracked_remote = {remote[i].rel for i in synced if i in remote}
        new_remote = {r.rel: r for i, r in remote.items() if i not in synced}
        for rel in sorted(r for r in local if r not in claimed):
            le = local[rel]
            r = new_remote.pop(rel, None)
            if r is None:
                if rel in tracked_remote:
                    continue  # a synced item is coming here (a later round)
                if le.is_dir:
                    actions.append(("folder", self._create_folder_fn(rel)))
                else:
                    actions.append(("up", self._upload_fn(rel, None, None)))
            elif le.is_dir and r.node.is_dir:
                self._record_dir(r.node.id, rel)
            elif not le.is_dir and not r.node.is_dir:
                if self._safe_hash(rel) == r.node.content_hash:
                    self._record_file(r, le)
                else:
                    actions.append(("conflict", self._conflict_fn(r, le)))
            else:
                actions.append(("conflict", lambda rel=rel: self._move_aside(rel) and None))
        for rel, r in sorted(new_remote.items()):
            if rel in claimed:
                continue  # a synced local item is still there (deleted or moved this round)
            if r.node.is_dir:
                actions.append(("mkdir", self._mkdir_fn(r)))
            else:
                actions.append(("down", self._download_fn(r, None)))

        self._check_guard(synced, local_deletes, remote_deletes)

        done = 0
        order = ["conflict", "up", "down", "mkdir", "folder"]
        first = [a for a in actions if a[0] in ("conflict",)]
        rest = [a for a in actions if a[0] not in ("conflict",)]
        for _, run in first + self._transfers_first(rest, order):
            done += self._run(run)
        for s in local_deletes:
            done += self._run(lambda s=s: self._delete_local(s, local))
        for s in sorted(local_rmdirs, key=lambda s: -s.rel.count("/")):
            done += self._run(lambda s=s: self._rmdir_local(s))
        top = [
            s
            for s in remote_deletes
            if not any(_under(s.rel, d.rel) for d, _ in remote_dirs_deleted)
        ]
        for s in top:
            done += self._run(lambda s=s: self._delete_remote(s, remote[s.id], False))
        for s, r in remote_dirs_deleted:
            if not any(_under(s.rel, d.rel) and d.id != s.id for d, _ in remote_dirs_deleted):
                done += self._run(lambda s=s, r=r: self._delete_remote(s, r, True))
            else:
                self.state.forget(s.id)
        return done

    @staticmethod
    def _transfers_first(
        actions: list[tuple[str, Callable[[], None]]], order: list[str]
    ) -> list[tuple[str, Callable[[], None]]]:
        return sorted(actions, key=lambda a: order.index(a[0]) if a[0] in order else 99)

    def _run(self, fn: Callable[[], None]) -> int:
        try:
            fn()
        except _Stale as exc:
            log.debug("deferred: %s", exc)
        except OSError as exc:
            log.warning("%s", exc)
        return 1

    def _safe_hash(self, rel: str) -> str | None:
        try:
            return self._hash(rel)
        except OSError:
            return None

    def _check_guard(
        self, synced: dict[str, Synced], local_deletes: list, remote_deletes: list
    ) -> None:
        if self.force:
            return
        total = max(1, sum(1 for s in synced.values() if not s.is_dir))
        for n, where in ((len(local_deletes), "here"), (len(remote_deletes), "on the server")):
            if not guard_verdict(n, total, self.cfg):
                continue
            question = f"this pass would delete {n} of {total} synced files {where}"
            if self.confirm is not None and self.confirm(question):
                continue
            raise GuardTripped(
                f"{question}; nothing was deleted. If that is what you want, run again with "
                "--force (otherwise restore the files, or check the server's trash)."
            )

    # -- actions ----------------------------------------------------------------------------------
    def _record_dir(self, node_id: str, rel: str) -> None:
        st = os.stat(self.abs(rel))
        self.state.put_synced(Synced(node_id, rel, True, ino=st.st_ino))
        self._known_dirs.add(rel)

    def _record_file(self, r: RNode, le: LocalEntry, blocks: list | None = None) -> None:
        n = r.node
        if blocks is None:
            meta = self.remote.metadata(n.path) or {}
            blocks = [(b["id"], b["size"]) for b in meta.get("blocks", [])]
        self.state.put_synced(
            Synced(
                n.id,
                r.rel,
                False,
                n.rev,
                n.content_hash,
                n.size,
                n.mtime,
                le.ino,
                le.size,
                le.mtime_ns,
                blocks,
            )
        )

    def _create_folder_fn(self, rel: str) -> Callable[[], None]:
        def run() -> None:
            self._ensure_remote_parents(rel)
            self._create_remote_dir(rel)

        return run

    def _create_remote_dir(self, rel: str) -> None:
        if rel in self._known_dirs:
            return
        log.info("new folder on server: %s", rel)
        try:
            node = self.remote.create_folder(self.rpath(rel))
            nid = node.id
        except Conflict as exc:
            meta = self.remote.metadata(self.rpath(rel))
            if not meta or not meta["is_dir"]:
                raise _Stale(str(exc)) from exc
            nid = str(meta["id"])
        self.stats.folders += 1
        if self.abs(rel).is_dir():
            self._record_dir(nid, rel)
        self._known_dirs.add(rel)

    def _ensure_remote_parents(self, rel: str) -> None:
        for parent in iter_rel_parents(rel):
            if parent not in self._known_dirs:
                self._create_remote_dir(parent)

    def _mkdir_fn(self, r: RNode) -> Callable[[], None]:
        def run() -> None:
            p = self.abs(r.rel)
            if os.path.lexists(p) and not p.is_dir():
                self._move_aside(r.rel)
            p.mkdir(parents=True, exist_ok=True)
            self.stats.folders += 1
            self._record_dir(r.node.id, r.rel)

        return run

    def _conflict_fn(self, r: RNode, le: LocalEntry) -> Callable[[], None]:
        def run() -> None:
            cur = os.lstat(self.abs(le.rel))
            if (cur.st_ino, cur.st_size, cur.st_mtime_ns) != (le.ino, le.size, le.mtime_ns):
                raise _Stale(f"{le.rel} changed while syncing")
            self._forget_rel(le.rel)
            self._move_aside(le.rel)
            self._download(r, None)

        return run

    def _forget_rel(self, rel: str) -> None:
        for s in self.state.synced().values():
            if s.rel == rel:
                self.state.forget(s.id)

    def _delete_local(self, s: Synced, local: dict[str, LocalEntry]) -> None:
        p = self.abs(s.rel)
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            self.state.forget(s.id)
            return
        if (st.st_ino, st.st_size, st.st_mtime_ns) != (s.ino, s.lsize, s.lmtime_ns):
            le = local[s.rel]
            if (st.st_ino, st.st_size, st.st_mtime_ns) != (le.ino, le.size, le.mtime_ns):
                raise _Stale(f"{s.rel} changed while syncing")
        log.info("delete here: %s", s.rel)
        p.unlink()
        self.state.forget(s.id)
        self.stats.deleted_local += 1

    def _rmdir_local(self, s: Synced) -> None:
        self.state.forget(s.id)
        try:
            os.rmdir(self.abs(s.rel))
            log.info("delete folder here: %s", s.rel)
            self.stats.deleted_local += 1
        except FileNotFoundError:
            pass
        except OSError:
            # something new or ignored is inside: the folder stays, and goes back to the server
            log.info("folder %s deleted on the server keeps local content", s.rel)

    def _delete_remote(self, s: Synced, r: RNode, is_dir: bool) -> None:
        log.info("delete on server (to its trash): %s", s.rel)
        try:
            self.remote.delete(r.node.path, None if is_dir else s.rev)
        except NotFound:
            pass
        except PreconditionFailed as exc:
            raise _Stale(str(exc)) from exc
        if is_dir:
            for x in self.state.synced().values():
                if _under(x.rel, s.rel):
                    self.state.forget(x.id)
        else:
            self.state.forget(s.id)
        self.stats.deleted_remote += 1

    # -- uploads ----------------------------------------------------------------------------------
    def _upload_fn(self, rel: str, base_rev: str | None, old_id: str | None) -> Callable[[], None]:
        return lambda: self._upload(rel, base_rev, old_id)

    def _upload(self, rel: str, base_rev: str | None, old_id: str | None) -> None:
        p = self.abs(rel)
        before = os.stat(p)
        blocks, sha, size = file_blocks(str(p))
        after = os.stat(p)
        if (before.st_mtime_ns, before.st_size, before.st_ino) != (
            after.st_mtime_ns,
            after.st_size,
            after.st_ino,
        ) or size != after.st_size:
            raise _Stale(f"{rel} changed while reading it")
        log.info("upload: %s (%d bytes)", rel, size)
        self._put_blocks(rel, blocks, self.remote.blocks_missing([b.id for b in blocks]))
        self._ensure_remote_parents(rel)
        try:
            node = self._commit(rel, blocks, size, sha, before.st_mtime, base_rev)
        except Conflict as exc:
            meta = self.remote.metadata(self.rpath(rel))
            if meta and meta.get("content_hash") == sha and not meta.get("is_dir"):
                node = Node.from_json(meta)  # already there (a retried or earlier commit)
            elif exc.code == "parent_not_found":
                self._known_dirs.difference_update(iter_rel_parents(rel))
                raise _Stale(str(exc)) from exc
            else:
                # the server's version wins the name; ours becomes a conflicted copy (uploaded
                # by the next round), the server's comes down next round
                if old_id:
                    self.state.forget(old_id)
                self._forget_rel(rel)
                self._move_aside(rel)
                return
        if old_id and old_id != node.id:
            self.state.forget(old_id)
        self.state.put_synced(
            Synced(
                node.id,
                rel,
                False,
                node.rev,
                sha,
                size,
                node.mtime,
                before.st_ino,
                before.st_size,
                before.st_mtime_ns,
                [(b.id, b.size) for b in blocks],
            )
        )
        self.stats.uploaded += 1

    def _commit(
        self,
        rel: str,
        blocks: list[Block],
        size: int,
        sha: str,
        mtime: float,
        base_rev: str | None,
    ) -> Node:
        """``files/commit``; when a block checked as held went away before it (its staging
        expired, or a purge collected it), send the blocks the server names and commit once
        more instead of failing the pass."""
        ids = [b.id for b in blocks]
        try:
            return self.remote.commit(self.rpath(rel), ids, size, sha, mtime, base_rev)
        except RemoteError as exc:
            gone = set(exc.details.get("missing") or ()) if exc.status == 400 else set()
            if not gone or not gone <= set(ids):
                raise
        log.info("upload: %s: %d blocks went missing, sending them again", rel, len(gone))
        self._put_blocks(rel, blocks, gone)
        return self.remote.commit(self.rpath(rel), ids, size, sha, mtime, base_rev)

    def _put_blocks(self, rel: str, blocks: list[Block], missing: set[str]) -> None:
        """Upload the blocks of ``rel`` named in ``missing``, in parallel, each read again from
        the file and checked against its id (``_Stale`` when the file changed meanwhile)."""
        p = self.abs(rel)
        todo = {b.id: b for b in blocks if b.id in missing}
        bar = self._bar(sum(b.size for b in todo.values()), f"up {rel}")

        def put(b: Block) -> int:
            with open(p, "rb") as f:
                data = os.pread(f.fileno(), b.size, b.offset)
            if block_id(data) != b.id:
                raise _Stale(f"{rel} changed while uploading it")
            self.remote.put_block(b.id, data)
            if bar is not None:
                bar.update(len(data))
            return len(data)

        try:
            with _workers() as pool:
                self.stats.bytes_up += sum(pool.map(put, todo.values()))
        finally:
            if bar is not None:
                bar.close()

    def _bar(self, total: int, desc: str) -> object | None:
        if not self.progress or total < PROGRESS_MIN:
            return None
        from tqdm import tqdm

        return tqdm(
            total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, leave=False
        )

    # -- downloads --------------------------------------------------------------------------------
    def _download_fn(self, r: RNode, expect: LocalEntry | None) -> Callable[[], None]:
        return lambda: self._download(r, expect)

    def _local_blocks(self) -> dict[str, tuple[str, int, int]]:
        """Blocks present in synced local files: id → (rel, offset, size)."""
        index: dict[str, tuple[str, int, int]] = {}
        for s in self.state.synced().values():
            if s.is_dir or not s.blocks:
                continue
            try:
                st = os.lstat(self.abs(s.rel))
            except OSError:
                continue
            if (st.st_ino, st.st_size, st.st_mtime_ns) != (s.ino, s.lsize, s.lmtime_ns):
                continue
            off = 0
            for bid, size in s.blocks:
                index.setdefault(bid, (s.rel, off, size))
                off += size
        return index

    def _download(self, r: RNode, expect: LocalEntry | None) -> None:
        meta = self.remote.metadata(r.node.path)
        if meta is None or str(meta["id"]) != r.id or meta.get("rev") is None or meta["is_dir"]:
            raise _Stale(f"{r.rel} changed on the server")
        node = Node.from_json(meta)
        blocks = [(b["id"], int(b["size"])) for b in meta.get("blocks", [])]
        log.info("download: %s (%d bytes)", r.rel, node.size)
        index = self._local_blocks()
        remote_bytes = sum(n for bid, n in blocks if bid not in index)
        bar = self._bar(remote_bytes, f"down {r.rel}")
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        sha = hashlib.sha256()

        def fetch(b: tuple[str, int]) -> tuple[bytes, bool]:
            bid, size = b
            hit = index.get(bid)
            if hit is not None:
                try:
                    with open(self.abs(hit[0]), "rb") as f:
                        data = os.pread(f.fileno(), hit[2], hit[1])
                    if block_id(data) == bid:
                        return data, False
                except OSError:
                    pass
            data = self.remote.get_block(bid)
            if block_id(data) != bid or len(data) != size:
                raise _Stale(f"block {bid} of {r.rel} arrived damaged")
            if bar is not None:
                bar.update(len(data))
            return data, True

        try:
            with open(tmp, "wb") as out, _workers() as pool:
                for data, fetched in self._ordered(pool, fetch, blocks):
                    sha.update(data)
                    out.write(data)
                    if fetched:
                        self.stats.bytes_down += len(data)
                out.flush()
                os.fsync(out.fileno())
            if sha.hexdigest() != node.content_hash:
                raise _Stale(f"{r.rel}: content hash mismatch after download")
            self._place(tmp, r.rel, expect, node.mtime)
        finally:
            if bar is not None:
                bar.close()
            tmp.unlink(missing_ok=True)
        st = os.stat(self.abs(r.rel))
        self.state.put_synced(
            Synced(
                node.id,
                r.rel,
                False,
                node.rev,
                node.content_hash,
                node.size,
                node.mtime,
                st.st_ino,
                st.st_size,
                st.st_mtime_ns,
                blocks,
            )
        )
        self.stats.downloaded += 1

    @staticmethod
    def _ordered(
        pool: ThreadPoolExecutor, fn: Callable, items: list
    ) -> Iterator[tuple[bytes, bool]]:
        window: collections.deque = collections.deque()
        for it in items:
            window.append(pool.submit(fn, it))
            if len(window) >= 2 * PARALLEL:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()

    def _place(self, tmp: Path, rel: str, expect: LocalEntry | None, mtime: float | None) -> None:
        """Rename a verified download into place, unless the local file changed meanwhile
        (then it is kept as a conflicted copy first)."""
        dst = self.abs(rel)
        try:
            cur = os.lstat(dst)
        except FileNotFoundError:
            cur = None
        if cur is not None:
            same = expect is not None and (cur.st_ino, cur.st_size, cur.st_mtime_ns) == (
                expect.ino,
                expect.size,
                expect.mtime_ns,
            )
            if not same or stat.S_ISDIR(cur.st_mode):
                self._forget_rel(rel)
                self._move_aside(rel)
        for parent in iter_rel_parents(rel):
            pp = self.abs(parent)
            if os.path.lexists(pp) and not pp.is_dir():
                self._move_aside(parent)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        os.replace(tmp, dst)
        fd = os.open(dst.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
