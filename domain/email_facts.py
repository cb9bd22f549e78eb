"""The facts of every email, typed: one model per kind.

Dates travel as ISO 8601 UTC strings; the renderer shows them in each recipient's time zone. The
builders (``domain.email_builders``) are the only code that fills them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from domain.email_kinds import EmailKind
from domain.vocabulary import Model


class EngagementFacts(Model):
    """What every engagement email can say about the engagement."""

    client: str
    contract_id: str
    end_date: str
    transition_ends_at: str


class EmailFacts(Model):
    kind: ClassVar[EmailKind]

    def as_dict(self) -> dict[str, Any]:
        """The flat facts the templates read (the engagement's facts merged in)."""
        data = self.model_dump(mode="json", exclude={"engagement"})
        engagement = getattr(self, "engagement", None)
        return {**(engagement.model_dump(mode="json") if engagement else {}), **data}


class AboutEngagement(EmailFacts):
    engagement: EngagementFacts


class NdaRequestFacts(AboutEngagement):
    kind = EmailKind.NDA_REQUEST
    nda_reference: str
    ip_assignment_clause: str
    deadline: str
    firm_lead: str
    """The firm's lead for this engagement: the person to return the NDA to and to ask."""
    firm_lead_email: str


class NdaReminderFacts(NdaRequestFacts):
    kind = EmailKind.NDA_REMINDER
    reminder: int


class NdaRecordedFacts(AboutEngagement):
    kind = EmailKind.NDA_RECORDED
    signed_by: str
    signed_at: str
    engineer_count: int


class AboutChecks(EmailFacts):
    """A background check's email: for whom it is done and which checks it covers, in words."""

    client: str
    checks: str


class CheckConsentRequestFacts(AboutChecks):
    kind = EmailKind.CHECK_CONSENT_REQUEST
    jurisdiction: str


class CheckConsentReminderFacts(CheckConsentRequestFacts):
    kind = EmailKind.CHECK_CONSENT_REMINDER


class AboutEngineer(AboutEngagement):
    engineer: str
    role: str


class CheckResultFacts(AboutEngineer):
    kind = EmailKind.CHECK_RESULT
    outcome: str
    checks: str
    consequence: str


class AccessGrantedFacts(AboutEngagement):
    kind = EmailKind.ACCESS_GRANTED
    roster: str


class EngineerAddedFacts(AboutEngineer):
    kind = EmailKind.ENGINEER_ADDED
    production_note: str


class EngineerRemovedFacts(AboutEngineer):
    kind = EmailKind.ENGINEER_REMOVED
    evidence: str


class RoleChangedFacts(AboutEngineer):
    kind = EmailKind.ROLE_CHANGED
    groups: str


class AccessReviewFacts(AboutEngagement):
    kind = EmailKind.ACCESS_REVIEW
    reviewed_at: str
    review_result: str
    changes: str


class NoticeReceivedFacts(AboutEngagement):
    kind = EmailKind.NOTICE_RECEIVED
    given_by: str
    notice_date: str
    documents: str


class EndDateMovedFacts(AboutEngagement):
    kind = EmailKind.END_DATE_MOVED
    previous_end_date: str
    reason_note: str


class HandoverReminderFacts(AboutEngagement):
    kind = EmailKind.HANDOVER_REMINDER
    missing_documents: str
    open_sessions: str


class Invitee(Model):
    """One attendee of a handover session, as the calendar invitation names them."""

    name: str
    email: str


class SessionInviteFacts(AboutEngagement):
    kind = EmailKind.SESSION_INVITE
    title: str
    starts_at: str
    duration_minutes: int
    session_uid: str
    session_sequence: int
    where: str
    """The room or the join link (or both), in words; "to be confirmed" when the session has neither."""
    location: str | None
    join_url: str | None
    attendees: str
    """Every attendee, one ``- `` line each (name and organisation)."""
    invitees: list[Invitee]
    """The same attendees for the calendar invitation."""


class SessionRescheduledFacts(SessionInviteFacts):
    kind = EmailKind.SESSION_RESCHEDULED


class SessionCancelledFacts(SessionInviteFacts):
    kind = EmailKind.SESSION_CANCELLED
    reason: str


class RevocationReportFacts(AboutEngagement):
    kind = EmailKind.REVOCATION_REPORT
    revoked_at: str
    evidence: str


class EmergencyRevocationFacts(AboutEngagement):
    kind = EmailKind.EMERGENCY_REVOCATION
    engineers: str
    reason: str
    revoked_at: str


class AccessRestoredFacts(AboutEngagement):
    kind = EmailKind.ACCESS_RESTORED
    engineers: str
    """One ``- `` line per engineer whose access came back, with the groups read back from the IAM."""
    reason: str
    """Why access had been revoked in an emergency."""
    restored_by: str
    restored_at: str


class TransitionOpenFacts(AboutEngagement):
    kind = EmailKind.TRANSITION_OPEN


class TransitionClosingFacts(AboutEngagement):
    kind = EmailKind.TRANSITION_CLOSING
    open_questions: int


class ClosingReportFacts(AboutEngagement):
    kind = EmailKind.CLOSING_REPORT
    documents: str
    sessions: str
    questions: str
    sweep: str


class CancellationFacts(AboutEngagement):
    kind = EmailKind.CANCELLATION
    reason: str


class CheckProgressFacts(AboutChecks):
    """A screening provider's check moved (needs a decision, disputed, expired): the people managing it."""

    kind = EmailKind.CHECK_PROGRESS
    engineer: str
    headline: str
    explanation: str
    until: str = ""
    """When a pending adverse action becomes final (ISO 8601), or empty."""


class CheckPreAdverseNoticeFacts(AboutChecks):
    """The engineer hears, in plain words, that the report may cost them production access and until when
    they can respond."""

    kind = EmailKind.CHECK_PRE_ADVERSE_NOTICE
    final_at: str


LINK_ADDED_WHEN_SENT = "(your personal link is added when this email is sent)"
"""The link fact as the workflow queues it: the email activity signs the real link (the key never
enters a workflow) and puts it in place of this."""


class AboutCertificationRound(AboutEngagement):
    round: int
    due_at: str
    engineers: str
    """One ``- `` line per engineer: name, email, role, groups."""


class AccessCertificationFacts(AboutCertificationRound):
    """The client's IAM owner is asked to keep or revoke each engineer, through a signed link."""

    kind = EmailKind.ACCESS_CERTIFICATION
    default_rule: str
    """What happens to an engineer left undecided at the due date, in words."""
    link: str = LINK_ADDED_WHEN_SENT


class CertificationEscalationFacts(AboutCertificationRound):
    """Nobody answered a round by its due date and the rule kept access: the firm's lead follows up."""

    kind = EmailKind.CERTIFICATION_ESCALATION
    iam_owner: str


FACTS_BY_KIND: dict[EmailKind, type[EmailFacts]] = {
    cls.kind: cls
    for cls in (
        NdaRequestFacts,
        NdaReminderFacts,
        NdaRecordedFacts,
        CheckConsentRequestFacts,
        CheckConsentReminderFacts,
        CheckResultFacts,
        AccessGrantedFacts,
        EngineerAddedFacts,
        EngineerRemovedFacts,
        RoleChangedFacts,
        AccessReviewFacts,
        NoticeReceivedFacts,
        EndDateMovedFacts,
        HandoverReminderFacts,
        SessionInviteFacts,
        SessionRescheduledFacts,
        SessionCancelledFacts,
        RevocationReportFacts,
        EmergencyRevocationFacts,
        AccessRestoredFacts,
        TransitionOpenFacts,
        TransitionClosingFacts,
        ClosingReportFacts,
        CancellationFacts,
        CheckProgressFacts,
        CheckPreAdverseNoticeFacts,
        AccessCertificationFacts,
        CertificationEscalationFacts,
    )
}
"""Every kind has exactly one facts model (a test holds each model to its template)."""
