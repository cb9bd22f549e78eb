"""Builders of the access certification emails: the round to the client's IAM owner, and the
escalation to the firm's lead when nobody answered and access was kept."""

from __future__ import annotations

from domain.email_builders import engagement, iso, label, listing
from domain.email_facts import AccessCertificationFacts, CertificationEscalationFacts
from domain.spec import EngagementSpec
from domain.state import Certification, CertificationEntry, EngagementState

DEFAULT_RULES = {
    "keep": "their access is kept, and the firm's engagement lead follows up with you",
    "revoke": "their access is revoked",
}


def certification_listing(entries: list[CertificationEntry]) -> str:
    return "\n".join(f"- {e.name} ({e.email}), {label(e.role)}: {listing(e.groups, 'no group')}" for e in entries)


def access_certification(
    spec: EngagementSpec, state: EngagementState, certification: Certification
) -> AccessCertificationFacts:
    return AccessCertificationFacts(
        engagement=engagement(spec, state),
        round=certification.round,
        due_at=iso(certification.due_at),
        engineers=certification_listing(certification.engineers),
        default_rule=DEFAULT_RULES[spec.certification_default or "keep"],
    )


def certification_escalation(
    spec: EngagementSpec, state: EngagementState, certification: Certification, kept: list[CertificationEntry]
) -> CertificationEscalationFacts:
    return CertificationEscalationFacts(
        engagement=engagement(spec, state),
        round=certification.round,
        due_at=iso(certification.due_at),
        iam_owner=f"{spec.client.contacts.iam_owner.name} ({spec.client.contacts.iam_owner.email})",
        engineers=certification_listing(kept),
    )
