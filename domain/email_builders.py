"""One builder per email kind: the facts of each email from the spec, the state and the moment.

The workflow and the previews build facts only through these, so no sentence is assembled in the
workflow and a missing fact is a type error (mypy), never a blank in a client's inbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from domain.email_facts import (
    AccessGrantedFacts,
    AccessReviewFacts,
    CancellationFacts,
    CheckConsentReminderFacts,
    CheckConsentRequestFacts,
    CheckPreAdverseNoticeFacts,
    CheckProgressFacts,
    CheckResultFacts,
    ClosingReportFacts,
    EmergencyRevocationFacts,
    EndDateMovedFacts,
    EngagementFacts,
    EngineerAddedFacts,
    EngineerRemovedFacts,
    HandoverReminderFacts,
    NdaRecordedFacts,
    NdaReminderFacts,
    NdaRequestFacts,
    NoticeReceivedFacts,
    RevocationReportFacts,
    RoleChangedFacts,
    SessionCancelledFacts,
    SessionInviteFacts,
    SessionRescheduledFacts,
    TransitionClosingFacts,
    TransitionOpenFacts,
)
from domain.spec import EngagementSpec, EngineerSpec
from domain.state import EngagementState, EngineerAccessReadBack, EngineerState, HandoverSession
from domain.vocabulary import DOCUMENT_LABELS, CheckStatus, KnowledgeTransferDocument

NOT_SET = "not set"


def iso(moment: datetime | None) -> str:
    """A date fact: ISO 8601, formatted in each recipient's time zone by the template."""
    return moment.isoformat() if moment else NOT_SET


def engagement(spec: EngagementSpec, state: EngagementState) -> EngagementFacts:
    return EngagementFacts(
        client=spec.client.name,
        contract_id=spec.contract_id,
        end_date=iso(state.end_date),
        transition_ends_at=iso(state.transition_ends_at),
    )


def nda_request(spec: EngagementSpec, state: EngagementState) -> NdaRequestFacts:
    return NdaRequestFacts(
        engagement=engagement(spec, state),
        nda_reference=spec.agreement.nda_reference,
        ip_assignment_clause=spec.agreement.ip_assignment_clause,
        deadline=iso(state.contract_signed_at + spec.nda_deadline),
    )


def nda_reminder(spec: EngagementSpec, state: EngagementState, reminder: int) -> NdaReminderFacts:
    return NdaReminderFacts(**nda_request(spec, state).model_dump(), reminder=reminder)


def nda_recorded(spec: EngagementSpec, state: EngagementState, signed_by: str) -> NdaRecordedFacts:
    return NdaRecordedFacts(
        engagement=engagement(spec, state),
        signed_by=signed_by,
        signed_at=iso(state.nda_signed_at),
        engineer_count=len(state.engineers),
    )


def check_labels(checks: list[str]) -> str:
    return ", ".join(c.replace("_", " ") for c in checks)


def check_consent(client: str, engineer: EngineerSpec, checks: list[str]) -> CheckConsentRequestFacts:
    return CheckConsentRequestFacts(client=client, jurisdiction=engineer.jurisdiction, checks=check_labels(checks))


def check_consent_reminder(client: str, engineer: EngineerSpec, checks: list[str]) -> CheckConsentReminderFacts:
    return CheckConsentReminderFacts(**check_consent(client, engineer, checks).model_dump())


def roster(state: EngagementState) -> str:
    lines = []
    for e in state.current_engineers():
        groups = ", ".join(e.groups) or "no groups"
        lines.append(f"- {e.spec.name} <{e.email}>, {e.spec.role}: {groups} (check: {e.check.value})")
    return "\n".join(lines)


def access_granted(spec: EngagementSpec, state: EngagementState) -> AccessGrantedFacts:
    return AccessGrantedFacts(engagement=engagement(spec, state), roster=roster(state))


def engineer_added(
    spec: EngagementSpec, state: EngagementState, engineer: EngineerState, role: str
) -> EngineerAddedFacts:
    note = " (production access after a cleared background check)" if engineer.spec.production_access else ""
    return EngineerAddedFacts(
        engagement=engagement(spec, state), engineer=engineer.spec.name, role=role, production_note=note
    )


def engineer_removed(
    spec: EngagementSpec, state: EngagementState, engineer: EngineerState, role: str
) -> EngineerRemovedFacts:
    evidence = f"identity active={engineer.identity_active}, groups={engineer.groups or 'none'}"
    return EngineerRemovedFacts(
        engagement=engagement(spec, state), engineer=engineer.spec.name, role=role, evidence=evidence
    )


def role_changed(spec: EngagementSpec, state: EngagementState, engineer: EngineerState, role: str) -> RoleChangedFacts:
    policy = spec.roles[role]
    groups = policy.non_production + (policy.production if engineer.check is CheckStatus.CLEARED else [])
    return RoleChangedFacts(
        engagement=engagement(spec, state), engineer=engineer.spec.name, role=role, groups=", ".join(groups) or "none"
    )


def check_result(spec: EngagementSpec, state: EngagementState, engineer: EngineerState, role: str) -> CheckResultFacts:
    if engineer.check is CheckStatus.CLEARED:
        consequence = "Production access has been granted: " + ", ".join(engineer.groups)
    else:
        consequence = "Every grant of this engineer has been removed and the identity deactivated."
    return CheckResultFacts(
        engagement=engagement(spec, state),
        engineer=engineer.spec.name,
        role=role,
        outcome=engineer.check.value,
        checks=", ".join(engineer.checks_performed),
        consequence=consequence,
    )


def review_changes(readbacks: list[EngineerAccessReadBack]) -> list[str]:
    return [
        f"{r.email}: removed {', '.join(r.removed_groups) or '-'}; restored {', '.join(r.granted_groups) or '-'}"
        for r in readbacks
        if r.removed_groups or r.granted_groups
    ]


def access_review(spec: EngagementSpec, state: EngagementState, now: datetime, changes: list[str]) -> AccessReviewFacts:
    return AccessReviewFacts(
        engagement=engagement(spec, state),
        reviewed_at=iso(now),
        review_result=f"{len(changes)} correction(s)" if changes else "no drift",
        changes="\n".join(changes) or "Every grant matches the policy.",
    )


def notice_received(spec: EngagementSpec, state: EngagementState, given_by: str, now: datetime) -> NoticeReceivedFacts:
    return NoticeReceivedFacts(
        engagement=engagement(spec, state),
        given_by=given_by,
        notice_date=iso(now),
        documents=", ".join(DOCUMENT_LABELS[d] for d in KnowledgeTransferDocument),
    )


def end_date_moved(
    spec: EngagementSpec, state: EngagementState, previous: datetime | None, reason: str | None
) -> EndDateMovedFacts:
    return EndDateMovedFacts(
        engagement=engagement(spec, state),
        previous_end_date=iso(previous),
        reason_note=f" ({reason})" if reason else "",
    )


def missing_documents(state: EngagementState) -> list[KnowledgeTransferDocument]:
    delivered = {d.name for d in state.documents}
    return [d for d in KnowledgeTransferDocument if d not in delivered]


def handover_reminder(spec: EngagementSpec, state: EngagementState) -> HandoverReminderFacts | None:
    """The reminder of what is still missing before the end, or None when nothing is."""
    missing = missing_documents(state)
    open_sessions = [s.title for s in state.sessions if s.status == "scheduled"]
    if not (missing or open_sessions or not state.sessions):
        return None
    return HandoverReminderFacts(
        engagement=engagement(spec, state),
        missing_documents=", ".join(d.value for d in missing) or "none",
        open_sessions=", ".join(open_sessions) or "none scheduled yet",
    )


def session_invite(
    spec: EngagementSpec, state: EngagementState, session: HandoverSession, engagement_id: str
) -> SessionInviteFacts:
    return SessionInviteFacts(
        engagement=engagement(spec, state),
        title=session.title,
        starts_at=iso(session.starts_at),
        duration_minutes=int(session.duration.total_seconds() // 60),
        session_uid=f"{engagement_id}/{session.session_id}",
        session_sequence=session.sequence,
    )


def session_rescheduled(
    spec: EngagementSpec, state: EngagementState, session: HandoverSession, engagement_id: str
) -> SessionRescheduledFacts:
    return SessionRescheduledFacts(**session_invite(spec, state, session, engagement_id).model_dump())


def session_cancelled(
    spec: EngagementSpec, state: EngagementState, session: HandoverSession, engagement_id: str, reason: str | None
) -> SessionCancelledFacts:
    invite = session_invite(spec, state, session, engagement_id)
    return SessionCancelledFacts(**invite.model_dump(), reason=reason or "")


def evidence_text(readbacks: list[EngineerAccessReadBack]) -> str:
    return "\n".join(
        f"- {r.email}: removed {', '.join(r.removed_groups) or 'nothing left'}; now holds "
        f"{', '.join(r.groups) or 'no group'}; identity {'ACTIVE' if r.identity_active else 'inactive'}"
        for r in readbacks
    )


def revocation_report(
    spec: EngagementSpec, state: EngagementState, now: datetime, readbacks: list[EngineerAccessReadBack]
) -> RevocationReportFacts:
    return RevocationReportFacts(
        engagement=engagement(spec, state), revoked_at=iso(now), evidence=evidence_text(readbacks)
    )


def emergency_revocation(
    spec: EngagementSpec, state: EngagementState, now: datetime, affected: list[EngineerState], reason: str
) -> EmergencyRevocationFacts:
    return EmergencyRevocationFacts(
        engagement=engagement(spec, state),
        engineers="\n".join(f"- {e.spec.name} <{e.email}>: no group, identity inactive" for e in affected),
        reason=reason,
        revoked_at=iso(now),
    )


def transition_open(spec: EngagementSpec, state: EngagementState) -> TransitionOpenFacts:
    return TransitionOpenFacts(engagement=engagement(spec, state))


def transition_closing(spec: EngagementSpec, state: EngagementState) -> TransitionClosingFacts:
    open_questions = sum(1 for q in state.questions if q.answer is None)
    return TransitionClosingFacts(engagement=engagement(spec, state), open_questions=open_questions)


def closing_report(
    spec: EngagementSpec, state: EngagementState, readbacks: list[EngineerAccessReadBack]
) -> ClosingReportFacts:
    delivered = [d.name.value for d in state.documents]
    return ClosingReportFacts(
        engagement=engagement(spec, state),
        documents=f"{len(delivered)} of 5 ({', '.join(delivered) or 'none'})",
        sessions=str(sum(1 for s in state.sessions if s.status == "held")),
        questions=f"{sum(1 for q in state.questions if q.answer)} of {len(state.questions)}",
        sweep=f"{len(readbacks)} identities read back: no group membership, no active identity",
    )


def cancellation(spec: EngagementSpec, state: EngagementState, reason: str) -> CancellationFacts:
    return CancellationFacts(engagement=engagement(spec, state), reason=reason)


CheckProgress = Literal["awaiting_adjudication", "adverse_action", "disputed", "consent_expired", "suspended"]

_PROGRESS: dict[str, tuple[str, str]] = {
    "awaiting_adjudication": (
        "a decision is needed",
        "The screening provider's report has findings to consider. A person at the firm must decide, with a "
        "reason, whether the engineer is engaged or an adverse action starts; production access waits for it.",
    ),
    "adverse_action": (
        "adverse action started",
        "The firm started an adverse action on the report. The engineer has been sent a pre-adverse notice "
        "and may respond or dispute it; until the waiting period ends nothing is final, and production access "
        "stays closed.",
    ),
    "disputed": (
        "disputed by the engineer",
        "The engineer disputes the report with the screening provider. Everything is paused until the "
        "provider has looked into it; production access stays closed meanwhile.",
    ),
    "consent_expired": (
        "consent not given in time",
        "The engineer did not complete the screening provider's consent form in time, so the check was "
        "cancelled and production access will not be granted. Add the engineer again to start a new check.",
    ),
    "suspended": (
        "waiting for the engineer",
        "The screening provider needs more information from the engineer before the check can go on.",
    ),
}


def check_progress(
    client: str, engineer: EngineerSpec, checks: list[str], progress: CheckProgress, until: datetime | None = None
) -> CheckProgressFacts:
    headline, explanation = _PROGRESS[progress]
    return CheckProgressFacts(
        client=client,
        engineer=engineer.name,
        checks=check_labels(checks),
        headline=headline,
        explanation=explanation,
        until=iso(until) if until is not None else "",
    )


def check_pre_adverse_notice(
    client: str, engineer: EngineerSpec, checks: list[str], final_at: datetime
) -> CheckPreAdverseNoticeFacts:
    return CheckPreAdverseNoticeFacts(client=client, checks=check_labels(checks), final_at=iso(final_at))
