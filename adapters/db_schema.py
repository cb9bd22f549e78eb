"""The storage schema. Alembic migrations (``migrations/``) create it; this module mirrors them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

engagements = Table(
    "engagements",
    metadata,
    Column("engagement_id", String(80), primary_key=True),
    Column("contract_id", String(64), nullable=False, unique=True),
    Column("client_name", Text, nullable=False),
    Column("engagement_type", String(40), nullable=False),
    Column("phase", String(20), nullable=False),
    Column("nda_reference", Text, nullable=False),
    Column("ip_assignment_clause", Text, nullable=False),
    Column("spec", JSONB, nullable=False),
    Column("nda_signed_at", DateTime(timezone=True)),
    Column("notice_given_at", DateTime(timezone=True)),
    Column("end_date", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

engineers = Table(
    "engineers",
    metadata,
    Column("engagement_id", ForeignKey("engagements.engagement_id"), primary_key=True),
    Column("email", String(320), primary_key=True),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("production_access", Boolean, nullable=False),
    Column("jurisdiction", String(2), nullable=False),
    Column("check_status", String(20), nullable=False),
    Column("scim_user_id", Text),
    Column("removed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

access_grants = Table(
    "access_grants",
    metadata,
    Column("grant_id", BigInteger, Identity(), primary_key=True),
    Column("engagement_id", ForeignKey("engagements.engagement_id"), nullable=False),
    Column("engineer_email", String(320), nullable=False),
    Column("group_name", Text, nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("granted_by", Text, nullable=False),
    Column("grant_evidence", JSONB, nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_by", Text),
    Column("revoke_evidence", JSONB),
    Index(
        "one_open_grant_per_group",
        "engagement_id",
        "engineer_email",
        "group_name",
        unique=True,
        postgresql_where="revoked_at IS NULL",
    ),
)

documents = Table(
    "kt_documents",
    metadata,
    Column("engagement_id", ForeignKey("engagements.engagement_id"), primary_key=True),
    Column("name", String(40), primary_key=True),
    Column("location", Text, nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=False),
    Column("delivered_by", Text, nullable=False),
)

handover_sessions = Table(
    "handover_sessions",
    metadata,
    Column("engagement_id", ForeignKey("engagements.engagement_id"), primary_key=True),
    Column("session_id", String(40), primary_key=True),
    Column("title", Text, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("duration_seconds", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("held_at", DateTime(timezone=True)),
    Column("notes", Text),
)

questions = Table(
    "transition_questions",
    metadata,
    Column("engagement_id", ForeignKey("engagements.engagement_id"), primary_key=True),
    Column("question_id", String(40), primary_key=True),
    Column("text", Text, nullable=False),
    Column("asked_by", Text, nullable=False),
    Column("asked_at", DateTime(timezone=True), nullable=False),
    Column("answer", Text),
    Column("answered_by", Text),
    Column("answered_at", DateTime(timezone=True)),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("entry_id", BigInteger, Identity(), primary_key=True),
    Column("engagement_id", String(80), nullable=False, index=True),
    Column("event_key", Text, nullable=False, unique=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("details", JSONB, nullable=False),
    # Added by migration 0006: the hash chain (adapters/audit_chain.py); one successor per link.
    Column("prev_hash", String(64), nullable=False),
    Column("row_hash", String(64), nullable=False),
    UniqueConstraint("engagement_id", "prev_hash", name="audit_log_one_successor"),
)

email_outbox = Table(
    "email_outbox",
    metadata,
    Column("message_key", String(64), primary_key=True),
    Column("engagement_id", String(80), nullable=False, index=True),
    Column("step", Text, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("occurrence", Integer, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text, nullable=False),
    Column("state", String(20), nullable=False),
    Column("provider", String(20)),
    Column("provider_message_id", Text),
    Column("error", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    # Added by migration 0003 (exactly-once sending and delivery events):
    Column("state_changed_at", DateTime(timezone=True)),
    Column("unknown_since", DateTime(timezone=True)),  # when an ambiguous send began its reconciliation window
    Column("last_event", String(30)),  # the latest SendGrid delivery event that moved the row
    Column("last_event_at", DateTime(timezone=True)),
    UniqueConstraint("engagement_id", "step", "recipient", "occurrence", name="one_message_per_step"),
)

alerts = Table(
    "admin_alerts",
    metadata,
    Column("alert_id", BigInteger, Identity(), primary_key=True),
    Column("engagement_id", String(80), nullable=False, index=True),
    Column("alert_key", Text, nullable=False, unique=True),
    Column("raised_at", DateTime(timezone=True), nullable=False),
    Column("kind", String(60), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", JSONB, nullable=False),
    # Added by migration 0006: an admin acknowledges an alert (who, how known, when, why; also audited).
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("acknowledged_by", Text),
    Column("acknowledged_by_source", String(20)),
    Column("acknowledgement", Text),
)

# ---------------------------------------------------------------- email delivery events (migration 0003)
# SendGrid's Event Webhook, one row per sg_event_id (SendGrid may post an event more than once).

email_events = Table(
    "email_events",
    metadata,
    Column("event_id", BigInteger, Identity(), primary_key=True),
    Column("sg_event_id", Text, nullable=False, unique=True),
    Column("message_key", String(64), index=True),
    Column("sg_message_id", Text),
    Column("event", String(30), nullable=False),
    Column("bounce_type", String(20)),
    Column("recipient", String(320)),
    Column("reason", Text),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("payload", JSONB, nullable=False),
    Column("followed_up_at", DateTime(timezone=True)),
    Column("follow_up", Text),
)

# ---------------------------------------------------------------- shared identities (migration 0004)
# What each engagement currently grants one identity in one IAM. Two engagements of one client may
# staff the same engineer: the IAM must hold the union, and an engagement takes away only what no
# other live engagement grants. Rows are per engagement; an ended engagement's row grants nothing.

identity_grants = Table(
    "identity_grants",
    metadata,
    Column("iam_url", Text, primary_key=True),
    Column("user_name_lower", String(320), primary_key=True),
    Column("engagement_id", String(80), primary_key=True),
    Column("groups", JSONB, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
