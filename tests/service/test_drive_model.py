"""Hypothesis state machine: random write/overwrite/mkdir/move/copy/delete/restore sequences
against the real drive service, compared with an in-memory model after every step.

A file moved or copied over a file becomes a new revision of the destination (it is not
trashed); any other replaced destination goes to the trash."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from davdrive import errors
from tests.service.conftest import make_drive

NAMES = ["a", "b", "c é", "d#%"]
CONTENTS = st.sampled_from([b"", b"x", b"hello world", bytes(range(256)) * 3])


class MDir:
    def __init__(self, parent: MDir | None = None) -> None:
        self.children: dict[str, MDir | MFile] = {}
        self.parent = parent


class MFile:
    def __init__(self, data: bytes, parent: MDir) -> None:
        self.data = data
        self.parent = parent


def _clone(node: MDir | MFile, parent: MDir) -> MDir | MFile:
    if isinstance(node, MFile):
        return MFile(node.data, parent)
    twin = MDir(parent)
    twin.children = {k: _clone(v, twin) for k, v in node.children.items()}
    return twin


def _size(node: MDir | MFile) -> int:
    if isinstance(node, MFile):
        return len(node.data)
    return sum(_size(c) for c in node.children.values())


def _live(node: MDir | MFile, root: MDir) -> bool:
    cur: MDir | MFile | None = node
    while cur is not None and cur is not root:
        parent = cur.parent
        if parent is None or all(c is not cur for c in parent.children.values()):
            return False
        cur = parent
    return cur is root


class DriveMachine(RuleBasedStateMachine):
    drive = None  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.p = self.drive.create_account(f"u{uuid.uuid4().hex[:12]}", "x")
        self.root = MDir()
        self.trash: list[tuple[MDir | MFile, MDir, str]] = []  # node, old parent, name

    # helpers ----------------------------------------------------------------------------------
    def _paths(self, want_dirs: bool | None) -> list[tuple[str, MDir | MFile]]:
        out: list[tuple[str, MDir | MFile]] = []

        def walk(d: MDir, prefix: str) -> None:
            for name, child in sorted(d.children.items()):
                path = f"{prefix}/{name}"
                if want_dirs is None or isinstance(child, MDir) == want_dirs:
                    out.append((path, child))
                if isinstance(child, MDir):
                    walk(child, path)

        if want_dirs in (None, True):
            out.append(("/", self.root)) if want_dirs else None
        walk(self.root, "")
        return out

    def _dirs(self) -> list[tuple[str, MDir]]:
        return [("/", self.root)] + [(p, n) for p, n in self._paths(True) if p != "/"]  # type: ignore[misc]

    # rules --------------------------------------------------------------------------------------
    @rule(data=st.data(), name=st.sampled_from(NAMES), content=CONTENTS)
    def write(self, data, name, content) -> None:
        dpath, d = data.draw(st.sampled_from(self._dirs()))
        path = f"{dpath.rstrip('/')}/{name}"
        existing = d.children.get(name)
        if isinstance(existing, MDir):
            with pytest.raises(errors.Conflict):
                self.drive.write_file(self.p, path, content)
            return
        self.drive.write_file(self.p, path, content)
        if isinstance(existing, MFile):
            existing.data = content
        else:
            d.children[name] = MFile(content, d)

    @rule(data=st.data(), name=st.sampled_from(NAMES))
    def mkdir(self, data, name) -> None:
        dpath, d = data.draw(st.sampled_from(self._dirs()))
        path = f"{dpath.rstrip('/')}/{name}"
        if name in d.children:
            with pytest.raises(errors.AlreadyExists):
                self.drive.mkdir(self.p, path)
            return
        self.drive.mkdir(self.p, path)
        d.children[name] = MDir(d)

    def _transfer(self, data, name, overwrite: bool, copy: bool) -> None:
        sources = self._paths(None)
        if not sources:
            return
        spath, snode = data.draw(st.sampled_from(sources))
        dpath, d = data.draw(st.sampled_from(self._dirs()))
        dst = f"{dpath.rstrip('/')}/{name}"
        op = self.drive.copy if copy else self.drive.move
        if dst == spath:
            with pytest.raises(errors.PermissionDenied):
                op(self.p, spath, dst, overwrite=overwrite)
            return
        if dst.startswith(spath + "/") or spath.startswith(dst + "/"):
            # into itself, or replacing a folder that contains the source
            with pytest.raises(errors.Conflict):
                op(self.p, spath, dst, overwrite=overwrite)
            return
        existing = d.children.get(name)
        if existing is not None and not overwrite:
            with pytest.raises(errors.PreconditionFailed):
                op(self.p, spath, dst, overwrite=overwrite)
            return
        replaced = op(self.p, spath, dst, overwrite=overwrite)
        assert replaced == (existing is not None)
        if isinstance(existing, MFile) and isinstance(snode, MFile):
            # Save-by-rename: the destination file takes the content as a new revision.
            existing.data = snode.data
            if not copy:
                old_parent = snode.parent
                assert old_parent is not None
                old_name = next(k for k, v in old_parent.children.items() if v is snode)
                del old_parent.children[old_name]
            return
        if existing is not None:
            del d.children[name]
            self.trash.append((existing, d, name))
        if copy:
            d.children[name] = _clone(snode, d)
        else:
            old_parent = snode.parent
            assert old_parent is not None
            old_name = next(k for k, v in old_parent.children.items() if v is snode)
            del old_parent.children[old_name]
            snode.parent = d
            d.children[name] = snode

    @rule(data=st.data(), name=st.sampled_from(NAMES), overwrite=st.booleans())
    def move(self, data, name, overwrite) -> None:
        self._transfer(data, name, overwrite, copy=False)

    @rule(data=st.data(), name=st.sampled_from(NAMES), overwrite=st.booleans())
    def copy(self, data, name, overwrite) -> None:
        self._transfer(data, name, overwrite, copy=True)

    @rule(data=st.data())
    def delete(self, data) -> None:
        paths = self._paths(None)
        if not paths:
            return
        path, node = data.draw(st.sampled_from(paths))
        self.drive.delete(self.p, path)
        parent = node.parent
        assert parent is not None
        name = path.rsplit("/", 1)[1]
        del parent.children[name]
        self.trash.append((node, parent, name))

    @rule(data=st.data())
    def restore(self, data) -> None:
        if not self.trash:
            return
        index = data.draw(st.integers(0, len(self.trash) - 1))
        node, parent, name = self.trash.pop(index)
        items = self.drive.list_trash(self.p)
        # The drive lists newest first; the model keeps trash in deletion order.
        item = items[len(items) - 1 - index]
        restored = self.drive.restore_trash(self.p, item.id)
        target = parent if _live(parent, self.root) else self.root
        final, n = name, 1
        while final in target.children:
            stem, dot, ext = name.rpartition(".")
            suffix = " (restored)" if n == 1 else f" (restored {n})"
            final = (
                f"{stem}{suffix}.{ext}"
                if dot and stem and isinstance(node, MFile)
                else (f"{name}{suffix}")
            )
            n += 1
        assert restored.name == final
        node.parent = target
        target.children[final] = node

    # the check ------------------------------------------------------------------------------------
    @invariant()
    def same_tree(self) -> None:
        def compare(path: str, d: MDir) -> None:
            listing = self.drive.list_dir(self.p, path)
            assert [n.name for n in listing] == sorted(d.children), path
            for info in listing:
                child = d.children[info.name]
                assert info.is_dir == isinstance(child, MDir), info.path
                if isinstance(child, MFile):
                    assert info.size == len(child.data)
                    assert self.drive.read_bytes(self.p, info.path) == child.data
                else:
                    compare(info.path, child)

        compare("/", self.root)
        assert self.drive.usage(self.p).used == _size(self.root)


@pytest.mark.slow
def test_drive_matches_model(db_url, tmp_path):
    drive = make_drive(db_url, str(tmp_path / "master.key"))
    DriveMachine.drive = drive
    try:
        run = DriveMachine.TestCase
        run.settings = settings(
            max_examples=25 if "postgresql" in db_url else 60,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        run().runTest()
    finally:
        drive.store.close()
        drive.db.dispose()
