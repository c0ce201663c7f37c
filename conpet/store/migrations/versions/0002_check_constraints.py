"""Schema version 2: the database itself refuses values the code never writes.

CHECK constraints on every enumerated column (type and annotation kinds, annotation and run statuses,
module kinds), on spans (0 <= start < end) and on run progress (0..1). SQLite cannot add a constraint to a
table, so batch mode rebuilds each table (indexes and partial indexes are carried over).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 12:00:00

Migrations are frozen history: they never import conpet.store.models (which keeps changing).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = "('entity', 'relation')"
CHECKS = {
    "knowledge_types": [("kind", f"kind IN {KINDS}")],
    "annotations": [("kind", f"kind IN {KINDS}")],
    "annotation_versions": [
        ("status", "status IN ('gold', 'rejected', 'deleted')"),
        ("span", '0 <= start AND start < "end"'),
        ("tail", "tail_start IS NULL OR (0 <= tail_start AND tail_start < tail_end)"),
    ],
    "runs": [
        ("status", "status IN ('queued', 'running', 'finished', 'failed', 'cancelled', 'interrupted')"),
        ("progress", "progress >= 0 AND progress <= 1"),
    ],
    "modules": [("kind", "kind IN ('selector', 'expert', 'static')")],
    "predictions": [("kind", f"kind IN {KINDS}"), ("span", '0 <= start AND start < "end"')],
}


def _rebuild() -> str:
    """SQLite cannot add a constraint, so batch mode rebuilds each table; PostgreSQL alters it in place."""
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def upgrade() -> None:
    # values version 1 could hold that the new checks refuse
    op.execute("UPDATE runs SET progress = 0.0 WHERE progress < 0.0")
    op.execute("UPDATE runs SET progress = 1.0 WHERE progress > 1.0")
    op.execute("UPDATE runs SET status = 'interrupted' WHERE status NOT IN "
               "('queued', 'running', 'finished', 'failed', 'cancelled', 'interrupted')")
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, recreate=_rebuild()) as batch:
            for name, condition in checks:
                batch.create_check_constraint(name, condition)
    op.execute("UPDATE schema_version SET version = 2, updated_at = CURRENT_TIMESTAMP")


def downgrade() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, recreate=_rebuild()) as batch:
            for name, _ in checks:
                batch.drop_constraint(f"ck_{table}_{name}", type_="check")
    op.execute("UPDATE schema_version SET version = 1, updated_at = CURRENT_TIMESTAMP")
