"""identities: ids never reused, credentials generation, canonical logins, unique device names

Revision ID: 0003
Revises: 0002

* SQLite: ``users``, ``device``, ``node``, ``file_version`` and ``block`` are rebuilt with
  ``AUTOINCREMENT`` so a deleted row's id is never handed out again (PostgreSQL sequences never
  go back: nothing to do there). The rebuild runs with foreign keys off, since dropping the old
  ``users`` table with them on would cascade-delete every row that references it, and checks
  ``PRAGMA foreign_key_check`` before it commits.
* ``users.cred_gen``: the credentials generation, bumped by every password change.
* Logins become lowercase (the canonical form). When two logins differ only in case, the one
  already lowercase (else the oldest) gets the lowercase name and the others become
  ``<login>-2``, ``<login>-3`` ... (a warning names each rename).
* Device names are unique per account, case-insensitively (index ``uq_device_user_name``);
  existing duplicates are renamed ``<name> (2)``, ``<name> (3)`` ...

Every step is idempotent, so an interrupted SQLite upgrade can simply run again.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

AUTOINCREMENT_TABLES = ("users", "device", "node", "file_version", "block")
LOGIN_MAX = 64
DEVICE_NAME_MAX = 128


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    rebuild = [t for t in AUTOINCREMENT_TABLES if sqlite and not _has_autoincrement(bind, t)]
    if rebuild and bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        _foreign_keys_off(bind)
    _lowercase_logins(bind)
    _dedupe_device_names(bind)
    has_cred_gen = "cred_gen" in {c["name"] for c in sa.inspect(bind).get_columns("users")}
    cred_gen = sa.Column("cred_gen", sa.Integer(), server_default=sa.text("0"), nullable=False)
    for table in rebuild:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ) as batch:
            if table == "users" and not has_cred_gen:
                batch.add_column(cred_gen)
                has_cred_gen = True
    if not has_cred_gen:
        op.add_column("users", cred_gen)
    if rebuild:
        broken = bind.exec_driver_sql("PRAGMA foreign_key_check").all()
        if broken:
            raise RuntimeError(f"foreign key check failed after the rebuild: {broken[:5]}")
    if not _has_index(bind, "device", "uq_device_user_name"):
        op.create_index(
            "uq_device_user_name", "device", ["user_id", sa.text("lower(name)")], unique=True
        )


def downgrade() -> None:
    # The AUTOINCREMENT rebuild and the renames stay: ids that were never reused and lowercase
    # logins are valid under 0002 too.
    op.drop_index("uq_device_user_name", table_name="device")
    # Natively (SQLite >= 3.35): a batch rebuild of ``users`` with foreign keys on would cascade.
    op.execute("ALTER TABLE users DROP COLUMN cred_gen")


# -- logins ---------------------------------------------------------------------------------------
def _lowercase_logins(bind: sa.Connection) -> None:
    rows = bind.execute(sa.text("SELECT id, login FROM users ORDER BY id")).all()
    taken = {login for _, login in rows}
    groups: dict[str, list[tuple[int, str]]] = {}
    for user_id, login in rows:
        groups.setdefault(login.lower(), []).append((user_id, login))
    for canonical, members in groups.items():
        if all(login == canonical for _, login in members):
            continue
        exact = [m for m in members if m[1] == canonical]
        keeper = exact[0] if exact else members[0]  # members are in id order: the oldest
        for user_id, login in members:
            if (user_id, login) == keeper:
                new = canonical
            else:
                new = _free_name(canonical, taken, LOGIN_MAX, "{base}-{n}")
                log.warning(
                    "login %r clashes with %r when lowercased: renamed to %r", login, canonical, new
                )
            if new != login:
                taken.add(new)
                bind.execute(
                    sa.text("UPDATE users SET login = :new WHERE id = :id"),
                    {"new": new, "id": user_id},
                )


def _free_name(base: str, taken: set[str], limit: int, pattern: str, *, fold: bool = False) -> str:
    """``pattern`` filled with ``base`` (shortened to fit ``limit``) and the first free n >= 2."""
    n = 2
    while True:
        suffix_len = len(pattern.format(base="", n=n))
        name = pattern.format(base=base[: limit - suffix_len], n=n)
        if (name.lower() if fold else name) not in taken:
            return name
        n += 1


# -- device names ---------------------------------------------------------------------------------
def _dedupe_device_names(bind: sa.Connection) -> None:
    rows = bind.execute(sa.text("SELECT id, user_id, name FROM device ORDER BY user_id, id")).all()
    names: dict[int, set[str]] = {}
    for _, user_id, name in rows:
        names.setdefault(user_id, set()).add(name.lower())
    seen: dict[int, set[str]] = {}
    for device_id, user_id, name in rows:
        mine = seen.setdefault(user_id, set())
        if name.lower() not in mine:
            mine.add(name.lower())
            continue
        new = _free_name(name, names[user_id], DEVICE_NAME_MAX, "{base} ({n})", fold=True)
        names[user_id].add(new.lower())
        mine.add(new.lower())
        log.warning("device %r of user id %s renamed to %r (duplicate name)", name, user_id, new)
        bind.execute(
            sa.text("UPDATE device SET name = :new WHERE id = :id"), {"new": new, "id": device_id}
        )


# -- SQLite AUTOINCREMENT -------------------------------------------------------------------------
def _has_index(bind: sa.Connection, table: str, name: str) -> bool:
    if bind.dialect.name == "sqlite":  # the inspector skips expression indexes on SQLite
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND name = :n"
        return bind.execute(sa.text(sql), {"t": table, "n": name}).first() is not None
    return name in {ix["name"] for ix in sa.inspect(bind).get_indexes(table)}


def _has_autoincrement(bind: sa.Connection, table: str) -> bool:
    sql = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {"t": table}
    ).scalar()
    return "AUTOINCREMENT" in (sql or "").upper()


def _foreign_keys_off(bind: sa.Connection) -> None:
    """Commit what ran before this revision (stamped at 0002), switch foreign keys off, and go
    on in a new transaction that Alembic stamps and commits.

    ``PRAGMA foreign_keys`` is a no-op inside a transaction, hence the commit; the connection is
    detached from the pool so it is closed afterwards instead of serving the application with
    foreign keys off.
    """
    if bind.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        bind.exec_driver_sql("COMMIT")
    bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
    bind.exec_driver_sql("BEGIN IMMEDIATE")
    bind.detach()
