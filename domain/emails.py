"""Every email of the lifecycle: who receives it and what it says.

Both are pure: the workflow chooses the recipients from the spec, the email activity renders
the text from the facts the workflow hands it. A missing fact is an error, never a blank.
"""

from __future__ import annotations

import hashlib
import html
from enum import StrEnum
from typing import Any

from jinja2 import Environment, StrictUndefined
from pydantic import BaseModel, ConfigDict

from domain.spec import Contact, EngagementSpec, EngagementType


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
    REVOCATION_REPORT = "revocation_report"
    TRANSITION_OPEN = "transition_open"
    CLOSING_REPORT = "closing_report"
    CANCELLATION = "cancellation"


class Recipient(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    email: str
    timezone: str | None = None
    """IANA time zone the recipient reads dates in (UTC when unset)."""


def _r(contact: Contact) -> Recipient:
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
    table: dict[EmailKind, list[Recipient]] = {
        EmailKind.NDA_REQUEST: [_r(c.signatory)],
        EmailKind.NDA_REMINDER: [_r(c.signatory)],
        EmailKind.NDA_RECORDED: [_r(c.signatory), _r(c.engagement_manager), _r(spec.firm_lead)],
        EmailKind.CHECK_RESULT: [*managers, _r(c.iam_owner)],
        EmailKind.ACCESS_GRANTED: [_r(c.iam_owner), *managers],
        EmailKind.ENGINEER_ADDED: [*managers, _r(c.iam_owner)],
        EmailKind.ENGINEER_REMOVED: [*managers, _r(c.iam_owner)],
        EmailKind.ROLE_CHANGED: [*managers, _r(c.iam_owner)],
        EmailKind.ACCESS_REVIEW: [_r(c.iam_owner), _r(spec.firm_lead)],
        EmailKind.NOTICE_RECEIVED: [_r(c.engagement_manager), _r(c.signatory), _r(spec.firm_lead)],
        EmailKind.END_DATE_MOVED: [_r(c.engagement_manager), _r(c.iam_owner), _r(spec.firm_lead)],
        EmailKind.HANDOVER_REMINDER: [_r(spec.firm_lead), _r(c.engagement_manager)],
        EmailKind.SESSION_INVITE: [_r(c.incoming_team_lead), _r(c.engagement_manager), _r(spec.firm_lead)],
        EmailKind.REVOCATION_REPORT: [_r(c.iam_owner), _r(c.engagement_manager), _r(spec.firm_lead)],
        EmailKind.TRANSITION_OPEN: [_r(c.engagement_manager), _r(c.incoming_team_lead)],
        EmailKind.CLOSING_REPORT: [_r(c.engagement_manager), _r(c.signatory), _r(spec.firm_lead)],
        EmailKind.CANCELLATION: [_r(c.signatory), _r(spec.firm_lead)],
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


_SUBJECTS: dict[EmailKind, str] = {
    EmailKind.NDA_REQUEST: "{{ client }}: please sign the NDA for contract {{ contract_id }}",
    EmailKind.NDA_REMINDER: "Reminder {{ reminder }}: the NDA for contract {{ contract_id }} awaits signature",
    EmailKind.NDA_RECORDED: "{{ client }}: NDA recorded, onboarding begins",
    EmailKind.CHECK_CONSENT_REQUEST: "Your consent for a background check ({{ client }})",
    EmailKind.CHECK_CONSENT_REMINDER: "Reminder: background check consent ({{ client }})",
    EmailKind.CHECK_RESULT: "Background check {{ outcome }}: {{ engineer }}",
    EmailKind.ACCESS_GRANTED: "{{ client }}: engineers onboarded and access granted",
    EmailKind.ENGINEER_ADDED: "{{ client }}: {{ engineer }} joins the engagement",
    EmailKind.ENGINEER_REMOVED: "{{ client }}: {{ engineer }} leaves the engagement, access revoked",
    EmailKind.ROLE_CHANGED: "{{ client }}: {{ engineer }} is now {{ role }}",
    EmailKind.ACCESS_REVIEW: "{{ client }}: access review {{ review_result }}",
    EmailKind.NOTICE_RECEIVED: "{{ client }}: notice received, the engagement ends {{ end_date }}",
    EmailKind.END_DATE_MOVED: "{{ client }}: the end date moved to {{ end_date }}",
    EmailKind.HANDOVER_REMINDER: "{{ client }}: handover items still missing before {{ end_date }}",
    EmailKind.SESSION_INVITE: "Handover session: {{ title }} ({{ starts_at }})",
    EmailKind.REVOCATION_REPORT: "{{ client }}: all access revoked on {{ revoked_at }}",
    EmailKind.TRANSITION_OPEN: "{{ client }}: the transition window is open until {{ transition_ends_at }}",
    EmailKind.CLOSING_REPORT: "{{ client }}: engagement {{ contract_id }} closed",
    EmailKind.CANCELLATION: "{{ client }}: engagement {{ contract_id }} cancelled",
}

_BODIES: dict[EmailKind, str] = {
    EmailKind.NDA_REQUEST: (
        "Dear {{ name }},\n\nThank you for signing contract {{ contract_id }}. Before we share any "
        "information or request any access, we need the NDA ({{ nda_reference }}) signed.\n"
        "The engagement agreement assigns IP as set out in {{ ip_assignment_clause }}.\n\n"
        "Please sign it by {{ deadline }}; without it the engagement is cancelled on that date."
    ),
    EmailKind.NDA_REMINDER: (
        "Dear {{ name }},\n\nThe NDA ({{ nda_reference }}) for contract {{ contract_id }} is not signed yet. "
        "This is reminder {{ reminder }}. The engagement is cancelled on {{ deadline }} without it."
    ),
    EmailKind.NDA_RECORDED: (
        "Dear {{ name }},\n\nThe NDA for contract {{ contract_id }} was recorded as signed by "
        "{{ signed_by }} on {{ signed_at }}. Onboarding of {{ engineer_count }} engineer(s) begins now."
    ),
    EmailKind.CHECK_CONSENT_REQUEST: (
        "Dear {{ name }},\n\nYour role on the {{ client }} engagement needs production access, which is "
        "granted only after a cleared background check. The checks that apply in {{ jurisdiction }}: "
        "{{ checks }}.\nPlease give your consent to the screening provider."
    ),
    EmailKind.CHECK_CONSENT_REMINDER: (
        "Dear {{ name }},\n\nWe still need your consent for the background check ({{ checks }}) "
        "before production access on the {{ client }} engagement can be granted."
    ),
    EmailKind.CHECK_RESULT: (
        "Dear {{ name }},\n\nThe background check of {{ engineer }} ({{ checks }}) is {{ outcome }}.\n{{ consequence }}"
    ),
    EmailKind.ACCESS_GRANTED: (
        "Dear {{ name }},\n\nOnboarding for contract {{ contract_id }} is complete. Access granted, "
        "exactly the entitlements of each role:\n\n{{ roster }}"
    ),
    EmailKind.ENGINEER_ADDED: (
        "Dear {{ name }},\n\n{{ engineer }} joins the engagement as {{ role }}. Access follows the "
        "role's policy{{ production_note }}."
    ),
    EmailKind.ENGINEER_REMOVED: (
        "Dear {{ name }},\n\n{{ engineer }} left the engagement. Every grant was revoked at once and "
        "the identity deactivated; read back from your IAM: {{ evidence }}."
    ),
    EmailKind.ROLE_CHANGED: (
        "Dear {{ name }},\n\n{{ engineer }} changed role to {{ role }}. Their grants now follow that role "
        "exactly: {{ groups }}."
    ),
    EmailKind.ACCESS_REVIEW: (
        "Dear {{ name }},\n\nThe access review of {{ reviewed_at }} compared your IAM with the policy: "
        "{{ review_result }}.\n\n{{ changes }}"
    ),
    EmailKind.NOTICE_RECEIVED: (
        "Dear {{ name }},\n\nNotice was given by the {{ given_by }} on {{ notice_date }}.\n"
        "End date (all access revoked): {{ end_date }}\nTransition window closes: {{ transition_ends_at }}\n"
        "Before the end we deliver: {{ documents }}, and hold the handover sessions with your incoming team."
    ),
    EmailKind.END_DATE_MOVED: (
        "Dear {{ name }},\n\nThe end date moved from {{ previous_end_date }} to {{ end_date }}"
        "{{ reason_note }}. Every grant is revoked at that instant; the transition window closes "
        "{{ transition_ends_at }}."
    ),
    EmailKind.HANDOVER_REMINDER: (
        "Dear {{ name }},\n\nThe engagement ends {{ end_date }}. Still missing:\n"
        "Documents: {{ missing_documents }}\nHandover sessions not yet held: {{ open_sessions }}"
    ),
    EmailKind.SESSION_INVITE: (
        'Dear {{ name }},\n\nYou are invited to the handover session "{{ title }}" on {{ starts_at }} '
        "for {{ duration_minutes }} minutes, with the {{ client }} incoming team."
    ),
    EmailKind.REVOCATION_REPORT: (
        "Dear {{ name }},\n\nAt the end date ({{ revoked_at }}) every grant was revoked. Read back from "
        "your IAM:\n\n{{ evidence }}"
    ),
    EmailKind.TRANSITION_OPEN: (
        "Dear {{ name }},\n\nThe transition window is open until {{ transition_ends_at }}. Send your "
        "questions; they are tracked and answered. No system access remains."
    ),
    EmailKind.CLOSING_REPORT: (
        "Dear {{ name }},\n\nEngagement {{ contract_id }} is closed.\n"
        "Documents delivered: {{ documents }}\nHandover sessions held: {{ sessions }}\n"
        "Questions answered: {{ questions }}\nFinal sweep: {{ sweep }}"
    ),
    EmailKind.CANCELLATION: (
        "Dear {{ name }},\n\nEngagement {{ contract_id }} was cancelled: {{ reason }}. "
        "No information was shared and no access remains."
    ),
}

_env = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


class RenderedEmail(BaseModel):
    subject: str
    text: str
    html: str


def render(kind: EmailKind, facts: dict[str, Any], recipient: Recipient) -> RenderedEmail:
    """Render one email; raises jinja2's UndefinedError when a fact is missing."""
    context = {**facts, "name": recipient.name}
    subject = _env.from_string(_SUBJECTS[kind]).render(context)
    text = _env.from_string(_BODIES[kind]).render(context)
    paragraphs = "".join("<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in text.split("\n\n"))
    return RenderedEmail(subject=subject, text=text, html=f"<html><body>{paragraphs}</body></html>")
