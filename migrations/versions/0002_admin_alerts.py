"""admin alerts"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"


def upgrade() -> None:
    op.create_table(
        "admin_alerts",
        sa.Column("alert_id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("engagement_id", sa.String(length=80), nullable=False),
        sa.Column("alert_key", sa.Text(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("alert_id"),
        sa.UniqueConstraint("alert_key"),
    )
    op.create_index(op.f("ix_admin_alerts_engagement_id"), "admin_alerts", ["engagement_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_admin_alerts_engagement_id"), table_name="admin_alerts")
    op.drop_table("admin_alerts")
