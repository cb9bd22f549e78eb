"""Every email of the lifecycle by kind, and who receives it: routing follows the engagement type."""

from __future__ import annotations

import hashlib
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from domain.spec import Contact, EngagementSpec, EngagementType, EngineerSpec


class EmailKind(StrEnum):
    NDA_REQUEST = "nda_request"
    NDA_REMINDER = "nda_reminder"
    NDA_RECORDED = "nda_recorded"
    CHECK_CONSENT_REQUEST = "check_consent_request"
    CHECK_CONSENT_REMINDER = "check_consent_reminder"
    CHECK_RESULT = "check_result"
    ACCESS_GRANTED = "access_granted"
    ENGINEER_ADDED = "engineer_added"
    ENGINEER_REMOVED = "engineer_removed"
    ROLE_CHANGED = "role_changed"
    ACCESS_REVIEW = "access_review"
    NOTICE_RECEIVED = "notice_received"
    END_DATE_MOVED = "end_date_moved"
    HANDOVER_REMINDER = "handover_reminder"
    SESSION_INVITE = "session_invite"
    SESSION_RESCHEDULED = "session_rescheduled"
    SESSION_CANCELLED = "session_cancelled"
    REVOCATION_REPORT = "revocation_report"
    EMERGENCY_REVOCATION = "emergency_revocation"
    ACCESS_RESTORED = "access_restored"
    TRANSITION_OPEN = "transition_open"
    TRANSITION_CLOSING = "transition_closing"
    CLOSING_REPORT = "closing_report"
    CANCELLATION = "cancellation"
    CHECK_PROGRESS = "check_progress"
    CHECK_PRE_ADVERSE_NOTICE = "check_pre_adverse_notice"
    ACCESS_CERTIFICATION = "access_certification"
    CERTIFICATION_ESCALATION = "certification_escalation"


ENGINEER_ADDRESSED = frozenset(
    {EmailKind.CHECK_CONSENT_REQUEST, EmailKind.CHECK_CONSENT_REMINDER, EmailKind.CHECK_PRE_ADVERSE_NOTICE}
)
"""Kinds sent to one engineer by name rather than to contacts chosen from the spec."""


class Recipient(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    email: str
    timezone: str | None = None
    """IANA time zone the recipient reads dates in (UTC when unset)."""


def _r(contact: Contact | EngineerSpec) -> Recipient:
    return Recipient(name=contact.name, email=str(contact.email), timezone=contact.timezone)


def recipients(kind: EmailKind, spec: EngagementSpec) -> list[Recipient]:
    """Who receives an email of this kind (the engineer-addressed kinds are sent by name instead).

    In managed outsourcing the firm manages the engineers, so people matters go to the firm's lead
    and the client hears the outcome; in staff augmentation the client's engagement manager
    manages the engineers and receives them directly.
    """
    c = spec.client.contacts
    managers = (
        [_r(spec.firm_lead), _r(c.engagement_manager)]
        if spec.engagement_type is EngagementType.MANAGED_OUTSOURCING
        else [_r(c.engagement_manager)]
    )
    sessions = [_r(c.incoming_team_lead), _r(c.engagement_manager), _r(spec.firm_lead)]
    transition = [_r(c.engagement_manager), _r(c.incoming_team_lead)]
    table: dict[EmailKind, list[Recipient]] = {
        EmailKind.NDA_REQUEST: [_r(c.signatory)],
        EmailKind.NDA_REMINDER: [_r(c.signatory)],
        EmailKind.NDA_RECORDED: [_r(c.signatory), _r(c.engagement_manager), _r(spec.firm_lead)],
        EmailKind.CHECK_RESULT: [*managers, _r(c.iam_owner)],
        EmailKind.CHECK_PROGRESS: [*managers, _r(c.iam_owner)],
        EmailKind.ACCESS_GRANTED: [_r(c.iam_owner), *managers],
        EmailKind.ENGINEER_ADDED: [*managers, _r(c.iam_owner)],
        EmailKind.ENGINEER_REMOVED: [*managers, _r(c.iam_owner)],
        EmailKind.ROLE_CHANGED: [*managers, _r(c.iam_owner)],
        EmailKind.ACCESS_REVIEW: [_r(c.iam_owner), _r(spec.firm_lead)],
        EmailKind.NOTICE_RECEIVED: [_r(c.engagement_manager), _r(c.signatory), _r(spec.firm_lead)],
        EmailKind.END_DATE_MOVED: [_r(c.engagement_manager), _r(c.iam_owner), _r(spec.firm_lead)],
        EmailKind.HANDOVER_REMINDER: [_r(spec.firm_lead), _r(c.engagement_manager)],
        EmailKind.SESSION_INVITE: sessions,
        EmailKind.SESSION_RESCHEDULED: sessions,
        EmailKind.SESSION_CANCELLED: sessions,
        EmailKind.REVOCATION_REPORT: [_r(c.iam_owner), _r(c.engagement_manager), _r(spec.firm_lead)],
        EmailKind.EMERGENCY_REVOCATION: [_r(c.iam_owner), _r(c.engagement_manager), _r(spec.firm_lead)],
        EmailKind.ACCESS_RESTORED: [_r(c.iam_owner), _r(c.engagement_manager), _r(spec.firm_lead)],
        EmailKind.TRANSITION_OPEN: transition,
        EmailKind.TRANSITION_CLOSING: transition,
        EmailKind.CLOSING_REPORT: [_r(c.engagement_manager), _r(c.signatory), _r(spec.firm_lead)],
        EmailKind.CANCELLATION: [_r(c.signatory), _r(spec.firm_lead)],
        # The signed link is the IAM owner's alone: nobody else receives it.
        EmailKind.ACCESS_CERTIFICATION: [_r(c.iam_owner)],
        EmailKind.CERTIFICATION_ESCALATION: [_r(spec.firm_lead)],
    }
    chosen = table.get(kind)
    if chosen is None:
        raise ValueError(f"{kind} is addressed to an engineer, not chosen from the spec")
    unique: dict[str, Recipient] = {}
    for r in chosen:
        unique.setdefault(r.email.lower(), r)
    return list(unique.values())


def message_key(engagement_id: str, step: str, recipient: str, occurrence: int) -> str:
    """One key per (engagement, step, recipient, occurrence); it carries no personal data."""
    raw = f"{engagement_id}\x1f{step}\x1f{recipient.lower()}\x1f{occurrence}"
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def people(spec: EngagementSpec) -> list[Recipient]:
    """Everyone the spec names who may receive an email: contacts, the firm's lead, the engineers."""
    c = spec.client.contacts
    everyone = [c.signatory, c.engagement_manager, c.iam_owner, c.incoming_team_lead, spec.firm_lead]
    return [_r(p) for p in everyone] + [_r(e) for e in spec.engineers]
