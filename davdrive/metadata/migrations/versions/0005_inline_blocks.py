"""inline blocks: small files' blocks may live in the metadata database

Revision ID: 0005
Revises: 0004

Adds ``block.inline_data``: the sealed block (the same bytes the backend would hold) of a small
file, so storing it costs no object write and no fsync beyond the database's commit
(issue 15). Rows written before keep their objects; nothing is moved.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("block")}
    if "inline_data" not in columns:  # idempotent, like 0004
        op.add_column("block", sa.Column("inline_data", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("block") as batch:
        batch.drop_column("inline_data")
