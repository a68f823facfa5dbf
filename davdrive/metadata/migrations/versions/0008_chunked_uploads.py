"""Nextcloud chunked uploads (v2): upload folders, their parts and the parts' staged blocks

Revision ID: 0008
Revises: 0007

Adds ``chunked_upload`` (one folder under ``/remote.php/dav/uploads/<login>/``: who, the
client's name for it, whose keys seal it, the announced destination and length, expiry),
``chunked_part`` (a part's name, the number that orders it, its size) and ``chunked_block``
(the sealed blocks of each part, in order) and ``chunked_job`` (the outcome of an assembly
that outlived its MOVE, which the client polls). Nothing existing changes; idempotent.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    if "chunked_upload" not in tables:
        op.create_table(
            "chunked_upload",
            sa.Column("id", sa.String(length=64), nullable=False),
            sa.Column("user_id", BigId, nullable=False),
            sa.Column("name", sa.String(length=255), nullable=False),
            sa.Column("owner_id", sa.BigInteger(), nullable=False),
            sa.Column("destination", sa.Text(), nullable=True),
            sa.Column("total_length", sa.BigInteger(), nullable=True),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("expires_at", sa.Float(), nullable=False),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["users.id"],
                name="fk_chunked_upload_user_id_users",
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name="pk_chunked_upload"),
            sa.UniqueConstraint("user_id", "name", name="uq_chunked_upload_user_id"),
        )
        op.create_index("ix_chunked_upload_expires_at", "chunked_upload", ["expires_at"])
    if "chunked_part" not in tables:
        op.create_table(
            "chunked_part",
            sa.Column("upload_id", sa.String(length=64), nullable=False),
            sa.Column("name", sa.String(length=255), nullable=False),
            sa.Column("sort_key", sa.BigInteger(), nullable=False),
            sa.Column("size", sa.BigInteger(), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.ForeignKeyConstraint(
                ["upload_id"],
                ["chunked_upload.id"],
                name="fk_chunked_part_upload_id_chunked_upload",
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("upload_id", "name", name="pk_chunked_part"),
        )
    if "chunked_block" not in tables:
        op.create_table(
            "chunked_block",
            sa.Column("upload_id", sa.String(length=64), nullable=False),
            sa.Column("part", sa.String(length=255), nullable=False),
            sa.Column("seq", sa.BigInteger(), nullable=False),
            sa.Column("hash", sa.String(length=64), nullable=False),
            sa.Column("object_key", sa.String(length=128), nullable=False),
            sa.Column("offset", sa.BigInteger(), nullable=False),
            sa.Column("size", sa.BigInteger(), nullable=False),
            sa.Column("stored_size", sa.BigInteger(), nullable=False),
            sa.Column("new", sa.Boolean(), nullable=False),
            sa.ForeignKeyConstraint(
                ["upload_id"],
                ["chunked_upload.id"],
                name="fk_chunked_block_upload_id_chunked_upload",
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("upload_id", "part", "seq", name="pk_chunked_block"),
        )
        op.create_index("ix_chunked_block_object_key", "chunked_block", ["object_key"])
    if "chunked_job" not in tables:
        op.create_table(
            "chunked_job",
            sa.Column("id", sa.String(length=64), nullable=False),
            sa.Column("user_id", BigId, nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("node_id", sa.BigInteger(), nullable=True),
            sa.Column("etag", sa.String(length=128), nullable=True),
            sa.Column("error_status", sa.Integer(), nullable=True),
            sa.Column("error", sa.Text(), nullable=True),
            sa.Column("updated_at", sa.Float(), nullable=False),
            sa.Column("expires_at", sa.Float(), nullable=False),
            sa.ForeignKeyConstraint(
                ["user_id"], ["users.id"], name="fk_chunked_job_user_id_users", ondelete="CASCADE"
            ),
            sa.PrimaryKeyConstraint("id", name="pk_chunked_job"),
        )
        op.create_index("ix_chunked_job_expires_at", "chunked_job", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_chunked_job_expires_at", table_name="chunked_job")
    op.drop_table("chunked_job")
    op.drop_table("chunked_block")
    op.drop_table("chunked_part")
    op.drop_index("ix_chunked_upload_expires_at", table_name="chunked_upload")
    op.drop_table("chunked_upload")
