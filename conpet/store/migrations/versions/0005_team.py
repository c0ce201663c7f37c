"""Schema version 5: a team on one project.

- A project keeps its trained models' files in its database: ``blobs`` (file contents addressed by
  SHA-256) and ``stored_files`` (folder, path -> blob), so that a teammate who has only the database URL
  rebuilds the model folder a training saved.
- Who did what: ``knowledge_types.created_by / edited_by / edited_at``, a ``type_edits`` log, and
  ``runs.started_by`` (annotation versions had their author from version 1). Older rows get "".

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 04:10:00

Migrations are frozen history: they never import conpet.store.models (which keeps changing).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
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
    with op.batch_alter_table("knowledge_types", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by", sa.String(length=200), server_default="", nullable=False))
        batch_op.add_column(sa.Column("edited_by", sa.String(length=200), server_default="", nullable=False))
        batch_op.add_column(sa.Column("edited_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_by", sa.String(length=200), server_default="", nullable=False))
    op.create_table(
        "type_edits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["type_id"], ["knowledge_types.id"], name=op.f("fk_type_edits_type_id_knowledge_types")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_type_edits")),
    )
    with op.batch_alter_table("type_edits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_type_edits_type_id"), ["type_id"], unique=False)
    op.execute("UPDATE schema_version SET version = 5, updated_at = CURRENT_TIMESTAMP")


def downgrade() -> None:
    with op.batch_alter_table("type_edits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_type_edits_type_id"))
    op.drop_table("type_edits")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("started_by")
    with op.batch_alter_table("knowledge_types", schema=None) as batch_op:
        batch_op.drop_column("edited_at")
        batch_op.drop_column("edited_by")
        batch_op.drop_column("created_by")
    with op.batch_alter_table("stored_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stored_files_sha256"))
    op.drop_table("stored_files")
    op.drop_table("blobs")
    op.execute("UPDATE schema_version SET version = 4, updated_at = CURRENT_TIMESTAMP")
