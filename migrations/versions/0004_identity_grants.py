"""shared identities: what each engagement currently grants one identity in one IAM"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"


def upgrade() -> None:
    op.create_table(
        "identity_grants",
        sa.Column("iam_url", sa.Text(), nullable=False),
        sa.Column("user_name_lower", sa.String(length=320), nullable=False),
        sa.Column("engagement_id", sa.String(length=80), nullable=False),
        sa.Column("groups", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("iam_url", "user_name_lower", "engagement_id"),
    )


def downgrade() -> None:
    op.drop_table("identity_grants")
