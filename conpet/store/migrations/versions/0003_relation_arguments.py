"""Schema version 3: a relation type may declare which entity types its head and its tail take.

One new table, ``relation_arguments`` (relation type, role "head" or "tail", entity type); a relation
type with no row for a role takes any entity type there, so every older project means what it meant.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 13:45:00

Migrations are frozen history: they never import conpet.store.models (which keeps changing).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "relation_arguments",
        sa.Column("relation_type_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("entity_type_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("role IN ('head', 'tail')", name=op.f("ck_relation_arguments_role")),
        sa.ForeignKeyConstraint(["entity_type_id"], ["knowledge_types.id"],
                                name=op.f("fk_relation_arguments_entity_type_id_knowledge_types")),
        sa.ForeignKeyConstraint(["relation_type_id"], ["knowledge_types.id"],
                                name=op.f("fk_relation_arguments_relation_type_id_knowledge_types")),
        sa.PrimaryKeyConstraint("relation_type_id", "role", "entity_type_id", name=op.f("pk_relation_arguments")),
    )
    with op.batch_alter_table("relation_arguments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_relation_arguments_entity_type_id"), ["entity_type_id"], unique=False)
    op.execute("UPDATE schema_version SET version = 3, updated_at = CURRENT_TIMESTAMP")


def downgrade() -> None:
    with op.batch_alter_table("relation_arguments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_relation_arguments_entity_type_id"))
    op.drop_table("relation_arguments")
    op.execute("UPDATE schema_version SET version = 2, updated_at = CURRENT_TIMESTAMP")
