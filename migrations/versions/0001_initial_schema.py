"""initial schema"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None


# What several tables repeat, written once (this migration's own: later ones must not change it).


def _engagement_id() -> sa.Column[Any]:
    return sa.Column("engagement_id", sa.String(length=80), nullable=False)


def _belongs_to_engagement() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["engagement_id"], ["engagements.engagement_id"])


def _written_at(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)


def _row_number(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.BigInteger(), sa.Identity(always=False), nullable=False)


def upgrade() -> None:
    op.create_table(
        "audit_log",
        _row_number("entry_id"),
        _engagement_id(),
        sa.Column("event_key", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("entry_id"),
        sa.UniqueConstraint("event_key"),
    )
    op.create_index(
        op.f("ix_audit_log_engagement_id"), "audit_log", ["engagement_id"], unique=False
    )
    op.create_table(
        "email_outbox",
        sa.Column("message_key", sa.String(length=64), nullable=False),
        _engagement_id(),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=True),
        sa.Column("provider_message_id", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _written_at("created_at"),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("message_key"),
        sa.UniqueConstraint(
            "engagement_id",
            "step",
            "recipient",
            "occurrence",
            name="one_message_per_step",
        ),
    )
    op.create_index(
        op.f("ix_email_outbox_engagement_id"),
        "email_outbox",
        ["engagement_id"],
        unique=False,
    )
    op.create_table(
        "engagements",
        _engagement_id(),
        sa.Column("contract_id", sa.String(length=64), nullable=False),
        sa.Column("client_name", sa.Text(), nullable=False),
        sa.Column("engagement_type", sa.String(length=40), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=False),
        sa.Column("nda_reference", sa.Text(), nullable=False),
        sa.Column("ip_assignment_clause", sa.Text(), nullable=False),
        sa.Column("spec", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("nda_signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notice_given_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        _written_at("created_at"),
        _written_at("updated_at"),
        sa.PrimaryKeyConstraint("engagement_id"),
        sa.UniqueConstraint("contract_id"),
    )
    op.create_table(
        "access_grants",
        _row_number("grant_id"),
        _engagement_id(),
        sa.Column("engineer_email", sa.String(length=320), nullable=False),
        sa.Column("group_name", sa.Text(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.Text(), nullable=False),
        sa.Column(
            "grant_evidence", postgresql.JSONB(astext_type=sa.Text()), nullable=False
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Text(), nullable=True),
        sa.Column(
            "revoke_evidence", postgresql.JSONB(astext_type=sa.Text()), nullable=True
        ),
        _belongs_to_engagement(),
        sa.PrimaryKeyConstraint("grant_id"),
    )
    op.create_index(
        "one_open_grant_per_group",
        "access_grants",
        ["engagement_id", "engineer_email", "group_name"],
        unique=True,
        postgresql_where="revoked_at IS NULL",
    )
    op.create_table(
        "engineers",
        _engagement_id(),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("production_access", sa.Boolean(), nullable=False),
        sa.Column("jurisdiction", sa.String(length=2), nullable=False),
        sa.Column("check_status", sa.String(length=20), nullable=False),
        sa.Column("scim_user_id", sa.Text(), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        _written_at("updated_at"),
        _belongs_to_engagement(),
        sa.PrimaryKeyConstraint("engagement_id", "email"),
    )
    op.create_table(
        "handover_sessions",
        _engagement_id(),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        _belongs_to_engagement(),
        sa.PrimaryKeyConstraint("engagement_id", "session_id"),
    )
    op.create_table(
        "kt_documents",
        _engagement_id(),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_by", sa.Text(), nullable=False),
        _belongs_to_engagement(),
        sa.PrimaryKeyConstraint("engagement_id", "name"),
    )
    op.create_table(
        "transition_questions",
        _engagement_id(),
        sa.Column("question_id", sa.String(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("asked_by", sa.Text(), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_by", sa.Text(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        _belongs_to_engagement(),
        sa.PrimaryKeyConstraint("engagement_id", "question_id"),
    )

    # The audit log is append-only: the database itself refuses to change or delete an entry.
    op.execute(
        """
        CREATE FUNCTION audit_log_is_append_only() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
    op.execute("DROP FUNCTION IF EXISTS audit_log_is_append_only()")
    op.drop_table("transition_questions")
    op.drop_table("kt_documents")
    op.drop_table("handover_sessions")
    op.drop_table("engineers")
    op.drop_index(
        "one_open_grant_per_group",
        table_name="access_grants",
        postgresql_where="revoked_at IS NULL",
    )
    op.drop_table("access_grants")
    op.drop_table("engagements")
    op.drop_index(op.f("ix_email_outbox_engagement_id"), table_name="email_outbox")
    op.drop_table("email_outbox")
    op.drop_index(op.f("ix_audit_log_engagement_id"), table_name="audit_log")
    op.drop_table("audit_log")
