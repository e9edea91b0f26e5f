"""device model status: committed, served release and rollout of each device's last report

Revision ID: 0006
Revises: 0001
Create Date: 2026-12-01 20:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a plain '0' default, so SQLite adds the columns instead of rebuilding the table
    with op.batch_alter_table("device_model_states", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("committed", sa.Boolean(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("serving_release_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("rollout_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("device_model_states", schema=None) as batch_op:
        batch_op.drop_column("rollout_id")
        batch_op.drop_column("serving_release_id")
        batch_op.drop_column("committed")
