"""delta sync: blocks uploaded through the block API and not committed yet

Revision ID: 0010
Revises: 0009

Adds ``staged_block`` (per account and block id: the sealed object's key, plaintext and
stored sizes, and when the block was last uploaded). A row keeps its object referenced until
a commit uses the block or upkeep drops the row after the grace period
(``staged_block_grace``). Nothing existing changes; the step is idempotent.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    if "staged_block" not in tables:
        op.create_table(
            "staged_block",
            sa.Column("user_id", BigId, nullable=False),
            sa.Column("hash", sa.String(length=64), nullable=False),
            sa.Column("object_key", sa.String(length=128), nullable=False),
            sa.Column("size", sa.Integer(), nullable=False),
            sa.Column("stored_size", sa.Integer(), nullable=False),
            sa.Column("staged_at", sa.Float(), nullable=False),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["users.id"],
                name="fk_staged_block_user_id_users",
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("user_id", "hash", name="pk_staged_block"),
        )
        op.create_index("ix_staged_block_object_key", "staged_block", ["object_key"])
        op.create_index("ix_staged_block_staged_at", "staged_block", ["staged_at"])


def downgrade() -> None:
    op.drop_index("ix_staged_block_staged_at", table_name="staged_block")
    op.drop_index("ix_staged_block_object_key", table_name="staged_block")
    op.drop_table("staged_block")
