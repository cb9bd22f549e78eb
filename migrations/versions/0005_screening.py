"""screening provider: which check workflow owns which candidate, and the webhook events seen"""

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"


def upgrade() -> None:
    op.create_table(
        "screening_checks",
        sa.Column("check_workflow_id", sa.String(length=200), nullable=False),
        sa.Column("engagement_id", sa.String(length=80), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("candidate_id", sa.String(length=64), nullable=False),
        sa.Column("invitation_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("check_workflow_id"),
    )
    op.create_index("ix_screening_checks_candidate", "screening_checks", ["provider", "candidate_id"])
    op.create_table(
        "screening_events",
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("provider", "event_id"),
    )


def downgrade() -> None:
    op.drop_table("screening_events")
    op.drop_index("ix_screening_checks_candidate", table_name="screening_checks")
    op.drop_table("screening_checks")
