"""Schema version 4: a project keeps its trained models' files in its database.

Two new tables: ``blobs`` (file contents addressed by SHA-256) and ``stored_files`` (folder, path ->
blob), so that a teammate who has only the database URL rebuilds the model folder a training saved.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 04:10:00

Migrations are frozen history: they never import conpet.store.models (which keeps changing).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blobs")),
    )
    op.create_table(
        "stored_files",
        sa.Column("folder", sa.String(length=500), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["sha256"], ["blobs.sha256"], name=op.f("fk_stored_files_sha256_blobs")),
        sa.PrimaryKeyConstraint("folder", "path", name=op.f("pk_stored_files")),
    )
    with op.batch_alter_table("stored_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stored_files_sha256"), ["sha256"], unique=False)
    op.execute("UPDATE schema_version SET version = 4, updated_at = CURRENT_TIMESTAMP")


def downgrade() -> None:
    with op.batch_alter_table("stored_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stored_files_sha256"))
    op.drop_table("stored_files")
    op.drop_table("blobs")
    op.execute("UPDATE schema_version SET version = 3, updated_at = CURRENT_TIMESTAMP")
