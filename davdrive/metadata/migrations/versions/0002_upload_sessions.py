"""resumable upload sessions

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "upload_session",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("device_id", sa.BigInteger(), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("metadata_raw", sa.Text(), nullable=False),
        sa.Column("tail_hash", sa.String(length=64), nullable=True),
        sa.Column("tail_key", sa.String(length=128), nullable=True),
        sa.Column("tail_size", sa.BigInteger(), nullable=False),
        sa.Column("blocks_count", sa.BigInteger(), nullable=False),
        sa.Column("mtime", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_upload_session_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload_session")),
    )
    op.create_index(op.f("ix_upload_session_user_id"), "upload_session", ["user_id"])
    op.create_index(op.f("ix_upload_session_expires_at"), "upload_session", ["expires_at"])
    op.create_table(
        "upload_block",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("object_key", sa.String(length=128), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("stored_size", sa.BigInteger(), nullable=False),
        sa.Column("new", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["upload_session.id"],
            name=op.f("fk_upload_block_session_id_upload_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "seq", name=op.f("pk_upload_block")),
    )


def downgrade() -> None:
    op.drop_table("upload_block")
    op.drop_index(op.f("ix_upload_session_expires_at"), table_name="upload_session")
    op.drop_index(op.f("ix_upload_session_user_id"), table_name="upload_session")
    op.drop_table("upload_session")
