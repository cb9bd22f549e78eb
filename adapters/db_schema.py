"""The storage schema. Alembic migrations (``migrations/``) create it; this module mirrors them."""

from __future__ import annotations

from typing import Any

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
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()


def timestamp(name: str, **options: Any) -> Column[Any]:
    """A point in time, with its time zone (every time this schema keeps)."""
    return Column(name, DateTime(timezone=True), **options)


def written_at(name: str) -> Column[Any]:
    """When the row was written (or last updated): the database fills it in."""
    return timestamp(name, nullable=False, server_default=func.now())


def surrogate_key(name: str) -> Column[Any]:
    """A row number the database assigns (for tables whose rows have no business key of their own)."""
    return Column(name, BigInteger, Identity(), primary_key=True)


def engagement_key() -> Column[Any]:
    """The engagement a row belongs to, first part of the row's key."""
    return Column("engagement_id", ForeignKey("engagements.engagement_id"), primary_key=True)


def engagement_index() -> Column[Any]:
    """The engagement a log row is about, indexed (no foreign key to the engagements table)."""
    return Column("engagement_id", String(80), nullable=False, index=True)


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
    timestamp("nda_signed_at"),
    timestamp("notice_given_at"),
    timestamp("end_date"),
    timestamp("closed_at"),
    written_at("created_at"),
    written_at("updated_at"),
)

engineers = Table(
    "engineers",
    metadata,
    engagement_key(),
    Column("email", String(320), primary_key=True),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("production_access", Boolean, nullable=False),
    Column("jurisdiction", String(2), nullable=False),
    Column("check_status", String(20), nullable=False),
    Column("scim_user_id", Text),
    timestamp("removed_at"),
    written_at("updated_at"),
)

access_grants = Table(
    "access_grants",
    metadata,
    surrogate_key("grant_id"),
    Column("engagement_id", ForeignKey("engagements.engagement_id"), nullable=False),
    Column("engineer_email", String(320), nullable=False),
    Column("group_name", Text, nullable=False),
    timestamp("granted_at", nullable=False),
    Column("granted_by", Text, nullable=False),
    Column("grant_evidence", JSONB, nullable=False),
    timestamp("revoked_at"),
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
    engagement_key(),
    Column("name", String(40), primary_key=True),
    Column("location", Text, nullable=False),
    timestamp("delivered_at", nullable=False),
    Column("delivered_by", Text, nullable=False),
)

handover_sessions = Table(
    "handover_sessions",
    metadata,
    engagement_key(),
    Column("session_id", String(40), primary_key=True),
    Column("title", Text, nullable=False),
    timestamp("starts_at", nullable=False),
    Column("duration_seconds", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    timestamp("held_at"),
    Column("notes", Text),
)

questions = Table(
    "transition_questions",
    metadata,
    engagement_key(),
    Column("question_id", String(40), primary_key=True),
    Column("text", Text, nullable=False),
    Column("asked_by", Text, nullable=False),
    timestamp("asked_at", nullable=False),
    Column("answer", Text),
    Column("answered_by", Text),
    timestamp("answered_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    surrogate_key("entry_id"),
    engagement_index(),
    Column("event_key", Text, nullable=False, unique=True),
    timestamp("at", nullable=False),
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
    engagement_index(),
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
    written_at("created_at"),
    timestamp("sent_at"),
    # Added by migration 0003 (exactly-once sending and delivery events):
    timestamp("state_changed_at"),
    timestamp("unknown_since"),  # when an ambiguous send began its reconciliation window
    Column("last_event", String(30)),  # the latest SendGrid delivery event that moved the row
    timestamp("last_event_at"),
    UniqueConstraint("engagement_id", "step", "recipient", "occurrence", name="one_message_per_step"),
)

alerts = Table(
    "admin_alerts",
    metadata,
    surrogate_key("alert_id"),
    engagement_index(),
    Column("alert_key", Text, nullable=False, unique=True),
    timestamp("raised_at", nullable=False),
    Column("kind", String(60), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", JSONB, nullable=False),
    # Added by migration 0006: an admin acknowledges an alert (who, how known, when, why; also audited).
    timestamp("acknowledged_at"),
    Column("acknowledged_by", Text),
    Column("acknowledged_by_source", String(20)),
    Column("acknowledgement", Text),
    # The open alerts, oldest first (admins' queue).
    Index("admin_alerts_open", "raised_at", postgresql_where=text("acknowledged_at IS NULL")),
)

# ---------------------------------------------------------------- email delivery events (migration 0003)
# SendGrid's Event Webhook, one row per sg_event_id (SendGrid may post an event more than once).

email_events = Table(
    "email_events",
    metadata,
    surrogate_key("event_id"),
    Column("sg_event_id", Text, nullable=False, unique=True),
    Column("message_key", String(64), index=True),
    Column("sg_message_id", Text),
    Column("event", String(30), nullable=False),
    Column("bounce_type", String(20)),
    Column("recipient", String(320)),
    Column("reason", Text),
    timestamp("occurred_at", nullable=False),
    written_at("received_at"),
    Column("payload", JSONB, nullable=False),
    timestamp("followed_up_at"),
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
    timestamp("updated_at", nullable=False),
)
