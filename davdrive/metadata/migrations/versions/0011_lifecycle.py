"""storage lifecycle: job leases, the replication queue, per-account retention

Revision ID: 0011
Revises: 0010

Adds ``job_lease`` (one row per scheduled job: who holds it until when, and when its last run
started, so that with several server processes each run happens once and a crashed holder's
lease expires), ``replication_queue`` (copies of stored objects a replicated backend still owes
a store that was down when the object was written; durable, drained when the store returns)
and ``users.retention`` (a JSON object overriding the global ``retention`` settings for one
account; NULL: the defaults). Nothing existing changes; the step is idempotent.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    if "job_lease" not in tables:
        op.create_table(
            "job_lease",
            sa.Column("name", sa.String(length=64), nullable=False),
            sa.Column("holder", sa.String(length=128), nullable=True),
            sa.Column("expires_at", sa.Float(), nullable=False),
            sa.Column("last_run_at", sa.Float(), nullable=True),
            sa.PrimaryKeyConstraint("name", name="pk_job_lease"),
        )
    if "replication_queue" not in tables:
        op.create_table(
            "replication_queue",
            sa.Column("id", BigId, nullable=False),
            sa.Column("store", sa.String(length=64), nullable=False),
            sa.Column("object_key", sa.String(length=128), nullable=False),
            sa.Column("queued_at", sa.Float(), nullable=False),
            sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("id", name="pk_replication_queue"),
            sa.UniqueConstraint("store", "object_key", name="uq_replication_queue_store"),
            sqlite_autoincrement=True,
        )
    columns = {c["name"] for c in inspector.get_columns("users")}
    if "retention" not in columns:
        with op.batch_alter_table("users") as batch:
            batch.add_column(sa.Column("retention", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("retention")
    op.drop_table("replication_queue")
    op.drop_table("job_lease")
