"""login flow: Nextcloud Login Flow v2 state shared by every server process

Revision ID: 0007
Revises: 0006

Adds the ``login_flow`` table: the SHA-256 digests of a flow's poll and login tokens, the
client's name, its creation and expiry times, and the account that approved it (NULL while
pending). Nothing existing changes; the step is idempotent.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "login_flow" in sa.inspect(op.get_bind()).get_table_names():
        return
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "login_flow",
        sa.Column("poll_hash", sa.String(64), nullable=False),
        sa.Column("login_hash", sa.String(64), nullable=False),
        sa.Column("client_name", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column(
            "user_id",
            big_id,
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_login_flow_user_id_users"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("poll_hash", name="pk_login_flow"),
        sa.UniqueConstraint("login_hash", name="uq_login_flow_login_hash"),
    )
    op.create_index("ix_login_flow_expires_at", "login_flow", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_login_flow_expires_at", "login_flow")
    op.drop_table("login_flow")
