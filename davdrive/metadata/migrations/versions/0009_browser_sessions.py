"""browser sessions: the kind of a device

Revision ID: 0009
Revises: 0008

Adds ``device.kind``: ``app`` (a client with an app password and token: every device so far)
or ``browser`` (a web app session whose device token is the session cookie; it expires when
idle). Existing devices become ``app``. Nothing else changes; the step is idempotent.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("device")}
    if "kind" not in columns:
        op.add_column(
            "device",
            sa.Column("kind", sa.String(16), nullable=False, server_default=sa.text("'app'")),
        )


def downgrade() -> None:
    with op.batch_alter_table("device") as batch:
        batch.drop_column("kind")
