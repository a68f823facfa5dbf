"""shares and links: user-to-user shares and share links of a file or folder

Revision ID: 0006
Revises: 0005

Adds the ``link`` table (token, kind, password, expiry, uses, revocation), the ``share`` table
(owner, node, recipient, permission bits, where the recipient sees it),
``users.shares_out`` (how many shares an account gave: writes of accounts with none skip the
recipients' journals) and ``users.shares_in`` (how many it received: accounts with none skip
the look-up of mount points), ``node.trashed_by`` (who trashed it: a recipient's delete lands in the
owner's trash) and ``upload_session.owner_id`` (a resumable upload into a share seals its blocks
with the owner's keys). Nothing existing changes; every step is idempotent.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    bind = op.get_bind()
    if "share" not in sa.inspect(bind).get_table_names():
        big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
        op.create_table(
            "share",
            sa.Column("id", big_id, primary_key=True),
            sa.Column(
                "owner_id",
                big_id,
                sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_share_owner_id_users"),
                nullable=False,
            ),
            sa.Column(
                "node_id",
                big_id,
                sa.ForeignKey("node.id", ondelete="CASCADE", name="fk_share_node_id_node"),
                nullable=False,
            ),
            sa.Column(
                "recipient_id",
                big_id,
                sa.ForeignKey(
                    "users.id", ondelete="CASCADE", name="fk_share_recipient_id_users"
                ),
                nullable=False,
            ),
            sa.Column("perms", sa.Integer(), nullable=False),
            sa.Column("mount_path", sa.Text(), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_share"),
            sa.UniqueConstraint("node_id", "recipient_id", name="uq_share_node_recipient"),
            sqlite_autoincrement=True,
        )
        op.create_index("ix_share_recipient", "share", ["recipient_id"])
        op.create_index("ix_share_owner", "share", ["owner_id"])
    if "link" not in sa.inspect(bind).get_table_names():
        big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
        op.create_table(
            "link",
            sa.Column("id", big_id, primary_key=True),
            sa.Column(
                "owner_id",
                big_id,
                sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_link_owner_id_users"),
                nullable=False,
            ),
            sa.Column(
                "node_id",
                big_id,
                sa.ForeignKey("node.id", ondelete="CASCADE", name="fk_link_node_id_node"),
                nullable=False,
            ),
            sa.Column("token", sa.String(64), nullable=False),
            sa.Column("kind", sa.String(8), nullable=False),
            sa.Column("password_hash", sa.String(255), nullable=True),
            sa.Column("expires_at", sa.Float(), nullable=True),
            sa.Column("max_uses", sa.Integer(), nullable=True),
            sa.Column("uses", sa.Integer(), nullable=False),
            sa.Column("label", sa.String(255), nullable=True),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("revoked_at", sa.Float(), nullable=True),
            sa.PrimaryKeyConstraint("id", name="pk_link"),
            sa.UniqueConstraint("token", name="uq_link_token"),
            sqlite_autoincrement=True,
        )
        op.create_index("ix_link_owner", "link", ["owner_id"])
    if "shares_out" not in _columns("users"):
        op.add_column(
            "users",
            sa.Column("shares_out", sa.Integer(), nullable=False, server_default=sa.text("0")),
        )
    if "shares_in" not in _columns("users"):
        op.add_column(
            "users",
            sa.Column("shares_in", sa.Integer(), nullable=False, server_default=sa.text("0")),
        )
    if "trashed_by" not in _columns("node"):
        op.add_column("node", sa.Column("trashed_by", sa.BigInteger(), nullable=True))
    if "owner_id" not in _columns("upload_session"):
        op.add_column("upload_session", sa.Column("owner_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("upload_session") as batch:
        batch.drop_column("owner_id")
    with op.batch_alter_table("node") as batch:
        batch.drop_column("trashed_by")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("shares_in")
        batch.drop_column("shares_out")
    op.drop_index("ix_link_owner", "link")
    op.drop_table("link")
    op.drop_index("ix_share_owner", "share")
    op.drop_index("ix_share_recipient", "share")
    op.drop_table("share")
