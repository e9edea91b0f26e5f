"""data governance: contracts, quality, profile, classification, lineage, retention, erasure

Revision ID: 0007
Revises: 0001
Create Date: 2026-12-03 16:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import farpoint.server.db

revision: str = "0007"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dataset_contracts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("yaml", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", farpoint.server.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_dataset_contracts_dataset_id_datasets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_contracts")),
        sa.UniqueConstraint("dataset_id", "version", name=op.f("uq_dataset_contracts_dataset_id")),
    )
    with op.batch_alter_table("dataset_contracts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dataset_contracts_dataset_id"), ["dataset_id"], unique=False
        )

    op.create_table(
        "dataset_erasures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("column", sa.String(length=255), nullable=False),
        sa.Column("subject_hashes", sa.JSON(), nullable=False),
        sa.Column("rows_removed", sa.BigInteger(), nullable=False),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("new_version", sa.Integer(), nullable=True),
        sa.Column("affected", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", farpoint.server.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_dataset_erasures_dataset_id_datasets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_erasures")),
    )
    with op.batch_alter_table("dataset_erasures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dataset_erasures_dataset_id"), ["dataset_id"], unique=False
        )

    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("blob_digest", sa.String(length=71), nullable=True))
        batch_op.add_column(
            sa.Column(
                "source_format", sa.String(length=16), server_default="parquet", nullable=False
            )
        )
        batch_op.add_column(sa.Column("profile", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("quality", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("validation", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("contract_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("classification", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("transform", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("expires_at", farpoint.server.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("purged_at", farpoint.server.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("purge_reason", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("erased_rows", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_dataset_versions_parent_id_dataset_versions"),
            "dataset_versions",
            ["parent_id"],
            ["id"],
        )
    # Versions registered before this revision: the digest was their Parquet blob's.
    op.execute("UPDATE dataset_versions SET blob_digest = digest WHERE blob_digest IS NULL")

    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retention_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("retention_days")
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_dataset_versions_parent_id_dataset_versions"), type_="foreignkey"
        )
        for column in (
            "erased_rows", "purge_reason", "purged_at", "expires_at", "transform", "parent_id",
            "classification", "contract_version", "validation", "quality", "profile",
            "source_format", "blob_digest",
        ):  # fmt: skip
            batch_op.drop_column(column)
    op.drop_table("dataset_erasures")
    op.drop_table("dataset_contracts")
