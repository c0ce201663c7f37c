"""Schema version 4: the project's lease on model-changing work.

One new table, ``leases`` (name, holder token, purpose, host, process id and start token, acquired,
heartbeat, expiry): while a training, a prediction that writes or a bundle import runs, its row says who
runs it, so a second one (another process or another machine) is refused with the holder's name.
Portable SQL only (a table with a primary key; no SQLite-only statement), for PostgreSQL projects too.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 04:00:00

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
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("pid_started", sa.String(length=40), nullable=True),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.execute("UPDATE schema_version SET version = 4, updated_at = CURRENT_TIMESTAMP")


def downgrade() -> None:
    op.drop_table("leases")
    op.execute("UPDATE schema_version SET version = 3, updated_at = CURRENT_TIMESTAMP")
