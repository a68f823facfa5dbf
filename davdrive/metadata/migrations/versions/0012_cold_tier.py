"""cold tier: when a block was archived and when its restore was last requested

Revision ID: 0012
Revises: 0011

Adds ``block.archived_at`` (when the move of the block's object to the cold tier finished;
``block.tier`` says where the object is: hot, archiving, cold) and
``block.restore_requested_at`` (when a reader last asked the cold store to restore it: S3
GLACIER and DEEP_ARCHIVE). Together with the log lines they journal every archive move and
restore. Both are NULL for existing rows; nothing else changes; the step is idempotent.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    columns = {c["name"] for c in inspector.get_columns("block")}
    with op.batch_alter_table("block") as batch:
        if "archived_at" not in columns:
            batch.add_column(sa.Column("archived_at", sa.Float(), nullable=True))
        if "restore_requested_at" not in columns:
            batch.add_column(sa.Column("restore_requested_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("block") as batch:
        batch.drop_column("restore_requested_at")
        batch.drop_column("archived_at")
