"""email delivery: outbox reconciliation columns and SendGrid's delivery events"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"


def upgrade() -> None:
    op.add_column("email_outbox", sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("email_outbox", sa.Column("unknown_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("email_outbox", sa.Column("last_event", sa.String(length=30), nullable=True))
    op.add_column("email_outbox", sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "email_events",
        sa.Column("event_id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("sg_event_id", sa.Text(), nullable=False),
        sa.Column("message_key", sa.String(length=64), nullable=True),
        sa.Column("sg_message_id", sa.Text(), nullable=True),
        sa.Column("event", sa.String(length=30), nullable=False),
        sa.Column("bounce_type", sa.String(length=20), nullable=True),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("followed_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("follow_up", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
        sa.UniqueConstraint("sg_event_id"),
    )
    op.create_index(op.f("ix_email_events_message_key"), "email_events", ["message_key"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_email_events_message_key"), table_name="email_events")
    op.drop_table("email_events")
    op.drop_column("email_outbox", "last_event_at")
    op.drop_column("email_outbox", "last_event")
    op.drop_column("email_outbox", "unknown_since")
    op.drop_column("email_outbox", "state_changed_at")
