"""Path resolution in one statement: the hot paths (stat, PUT) resolve a path with one query.

A path of depth d becomes a chain of d self-joins of ``node`` from the account's root, each on
the live-name index ``(parent_id, name) WHERE trashed_at IS NULL``; the last link may be an
outer join (a PUT's target that may not exist yet). Each link is a folder by construction:
only folders have members. The statement for each depth is built once and cached; paths deeper
than ``MAX_CHAIN`` fall back to the caller's step-by-step walk.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Select, and_, bindparam, case, select, update
from sqlalchemy.engine import Connection, Row

from davdrive.metadata.fast_reads import prepared
from davdrive.metadata.schema import FileVersion, Node
from davdrive.service.timestamps import shown_mtime
from davdrive.service.types import NodeInfo

MAX_CHAIN = 32  # deeper paths are resolved one level at a time

_NODE = Node.__table__
_VERSION = FileVersion.__table__
_NODE_COLS = (
    "id",
    "user_id",
    "parent_id",
    "name",
    "is_dir",
    "current_version_id",
    "mtime",
    "created_at",
    "status",
)


@lru_cache(maxsize=2 * MAX_CHAIN + 2)
def chain_query(depth: int, with_child: bool) -> Select[Any]:
    """Root id ``:root`` and names ``:p1``..``:p<depth>`` → the node there (columns ``n_*``),
    and with ``with_child`` the live member named ``:child`` of it, if any (columns ``c_*``,
    NULL when absent), each with its current version's size, hash, date and pin."""
    links = [_NODE.alias(f"n{i}") for i in range(depth + 1)]
    joined: Any = links[0]
    for i in range(1, depth + 1):
        link, up = links[i], links[i - 1]
        joined = joined.join(
            link,
            and_(
                link.c.parent_id == up.c.id,
                link.c.name == bindparam(f"p{i}"),
                link.c.trashed_at.is_(None),
            ),
        )
    last = links[depth]
    last_v = _VERSION.alias("nv")
    joined = joined.outerjoin(last_v, last_v.c.id == last.c.current_version_id)
    cols = [last.c[c].label(f"n_{c}") for c in _NODE_COLS]
    cols += [last_v.c.size.label("n_size"), last_v.c.content_hash.label("n_content_hash")]
    if with_child:
        child, child_v = _NODE.alias("c"), _VERSION.alias("cv")
        joined = joined.outerjoin(
            child,
            and_(
                child.c.parent_id == last.c.id,
                child.c.name == bindparam("child"),
                child.c.trashed_at.is_(None),
            ),
        ).outerjoin(child_v, child_v.c.id == child.c.current_version_id)
        cols += [child.c[c].label(f"c_{c}") for c in _NODE_COLS]
        cols += [
            child_v.c.size.label("c_size"),
            child_v.c.content_hash.label("c_content_hash"),
            child_v.c.created_at.label("c_version_created"),
            child_v.c.pinned.label("c_pinned"),
        ]
    return prepared(select(*cols).select_from(joined).where(links[0].c.id == bindparam("root")))


def _ancestry() -> Any:
    up = select(_NODE.c.id, _NODE.c.parent_id).where(_NODE.c.id == bindparam("nid"))
    up = up.cte("up", recursive=True)
    up = up.union_all(select(_NODE.c.id, _NODE.c.parent_id).where(_NODE.c.id == up.c.parent_id))
    return select(up.c.id)


# A folder's ETag follows its mtime (``node_etag``); a change below a folder touches it and every
# folder above it (Nextcloud's ETag and mtime propagation: a sync client re-lists only the
# folders whose ETag changed, from the root down). One statement for the whole chain.
TOUCH_UP = prepared(
    update(_NODE)
    .where(_NODE.c.id.in_(_ancestry()))
    .values(
        mtime=case(
            (_NODE.c.mtime + 0.001 > bindparam("now"), _NODE.c.mtime + 0.001),
            else_=bindparam("now"),
        )
    )
)


def chain_params(root: int, parts: list[str], child: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"root": root}
    params.update({f"p{i}": name for i, name in enumerate(parts, 1)})
    if child is not None:
        params["child"] = child
    return params


def find(
    conn: Connection, root: int, parts: list[str], child: str | None = None
) -> Row[Any] | None:
    """The row of ``chain_query`` for ``parts`` below ``root`` (None: no such folder/file)."""
    query = chain_query(len(parts), child is not None)
    return conn.execute(query, chain_params(root, parts, child)).first()


def node_etag(node_id: int, is_dir: bool, version_id: int | None, mtime: float) -> str:
    """The ETag of a node (the same rule as ``core.etag`` for ORM nodes)."""
    if is_dir:
        return f"d{node_id:x}-{int(shown_mtime(mtime) * 1000):x}"
    if version_id is None:
        return f"p{node_id:x}"
    return f"{node_id:x}-{version_id:x}"


def row_info(row: Row[Any], prefix: str, path: str) -> NodeInfo | None:
    """The ``NodeInfo`` of the ``n_`` (node) or ``c_`` (child) half of a chain row."""
    m = row._mapping
    node_id = m[f"{prefix}id"]
    if node_id is None:
        return None
    is_dir = bool(m[f"{prefix}is_dir"])
    vid = m[f"{prefix}current_version_id"]
    mtime = m[f"{prefix}mtime"]
    return NodeInfo(
        node_id,
        m[f"{prefix}user_id"],
        m[f"{prefix}parent_id"],
        m[f"{prefix}name"],
        path,
        is_dir,
        m[f"{prefix}size"] or 0,
        m[f"{prefix}content_hash"],
        vid,
        node_etag(node_id, is_dir, vid, mtime),
        shown_mtime(mtime),
        m[f"{prefix}created_at"],
        m[f"{prefix}status"],
    )
