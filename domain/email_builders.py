"""One builder per email kind: the facts of each email from the spec, the state and the moment.

The workflow and the previews build facts only through these, so no sentence is assembled in the
workflow and a missing fact is a type error (mypy), never a blank in a client's inbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from domain.email_facts import (
    AccessGrantedFacts,
    AccessRestoredFacts,
    AccessReviewFacts,
    CancellationFacts,
    CheckConsentReminderFacts,
    CheckConsentRequestFacts,
    CheckResultFacts,
    ClosingReportFacts,
    EmergencyRevocationFacts,
    EndDateMovedFacts,
    EngagementFacts,
    EngineerAddedFacts,
    EngineerRemovedFacts,
    HandoverReminderFacts,
    Invitee,
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
from domain.email_kinds import EmailKind, recipients
from domain.spec import EngagementSpec, EngineerSpec
from domain.state import EngagementState, EngineerAccessReadBack, EngineerState, HandoverSession
from domain.vocabulary import DOCUMENT_LABELS, CheckStatus, KnowledgeTransferDocument

NOT_SET = "not set"

CHECK_LABELS: dict[CheckStatus, str] = {
    CheckStatus.NOT_REQUIRED: "no background check needed (no production access)",
    CheckStatus.PENDING: "background check not started yet",
    CheckStatus.IN_PROGRESS: "background check in progress",
    CheckStatus.CLEARED: "background check cleared",
    CheckStatus.FAILED: "background check failed",
    CheckStatus.CANCELLED: "background check cancelled",
}
"""How a person reads each check status (never the machine value)."""


def label(name: str) -> str:
    """A machine name (``system_runbooks``, ``prod-admin`` stays as it is) as a person reads it."""
    return name.replace("_", " ")


def listing(items: list[str], empty: str = "none") -> str:
    return ", ".join(items) or empty


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural_form or singular + 's')}"


def engineer_lines(engineers: Iterable[EngineerState], detail: Callable[[EngineerState], str]) -> str:
    """One line per engineer, as the client knows them: ``- Name (email)`` followed by ``detail``."""
    return "\n".join(f"- {e.spec.name} ({e.email}){detail(e)}" for e in engineers)


def _names(state: EngagementState) -> dict[str, str]:
    return {e.email.lower(): e.spec.name for e in state.engineers}


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
        firm_lead=spec.firm_lead.name,
        firm_lead_email=str(spec.firm_lead.email),
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
    return listing([label(c) for c in checks], "no check recorded")


def check_consent(client: str, engineer: EngineerSpec, checks: list[str]) -> CheckConsentRequestFacts:
    return CheckConsentRequestFacts(client=client, jurisdiction=engineer.jurisdiction, checks=check_labels(checks))


def check_consent_reminder(client: str, engineer: EngineerSpec, checks: list[str]) -> CheckConsentReminderFacts:
    return CheckConsentReminderFacts(**check_consent(client, engineer, checks).model_dump())


def roster(state: EngagementState) -> str:
    return engineer_lines(
        state.current_engineers(),
        lambda e: f", {label(e.spec.role)}: {listing(e.groups, 'no group yet')}; {CHECK_LABELS[e.check]}",
    )


def access_granted(spec: EngagementSpec, state: EngagementState) -> AccessGrantedFacts:
    return AccessGrantedFacts(engagement=engagement(spec, state), roster=roster(state))


def engineer_added(
    spec: EngagementSpec, state: EngagementState, engineer: EngineerState, role: str
) -> EngineerAddedFacts:
    note = " (production access after a cleared background check)" if engineer.spec.production_access else ""
    return EngineerAddedFacts(
        engagement=engagement(spec, state), engineer=engineer.spec.name, role=label(role), production_note=note
    )


def engineer_removed(
    spec: EngagementSpec, state: EngagementState, engineer: EngineerState, role: str
) -> EngineerRemovedFacts:
    held = listing(engineer.groups, "no group")
    evidence = f"{held}, identity {'still active' if engineer.identity_active else 'deactivated'}"
    return EngineerRemovedFacts(
        engagement=engagement(spec, state), engineer=engineer.spec.name, role=label(role), evidence=evidence
    )


def role_changed(spec: EngagementSpec, state: EngagementState, engineer: EngineerState, role: str) -> RoleChangedFacts:
    policy = spec.roles[role]
    groups = policy.non_production + (policy.production if engineer.check is CheckStatus.CLEARED else [])
    return RoleChangedFacts(
        engagement=engagement(spec, state), engineer=engineer.spec.name, role=label(role), groups=listing(groups)
    )


def check_result(spec: EngagementSpec, state: EngagementState, engineer: EngineerState, role: str) -> CheckResultFacts:
    if engineer.check is CheckStatus.CLEARED:
        policy = spec.roles.get(role)
        production = [g for g in (policy.production if policy else []) if not engineer.groups or g in engineer.groups]
        consequence = (
            "Production access has been granted: " + ", ".join(production)
            if production
            else "This role has no production groups to grant."
        )
    else:
        consequence = "Every grant of this engineer has been removed and the identity deactivated."
    return CheckResultFacts(
        engagement=engagement(spec, state),
        engineer=engineer.spec.name,
        role=label(role),
        outcome=engineer.check.value,
        checks=check_labels(engineer.checks_performed),
        consequence=consequence,
    )


def review_changes(readbacks: list[EngineerAccessReadBack]) -> list[str]:
    changes = []
    for r in readbacks:
        done = []
        if r.removed_groups:
            done.append("removed from " + ", ".join(r.removed_groups) + " (not in the role's policy)")
        if r.granted_groups:
            done.append("added back to " + ", ".join(r.granted_groups) + " (missing from the IAM)")
        if done:
            changes.append(f"- {r.email}: " + "; ".join(done))
    return changes


def access_review(spec: EngagementSpec, state: EngagementState, now: datetime, changes: list[str]) -> AccessReviewFacts:
    return AccessReviewFacts(
        engagement=engagement(spec, state),
        reviewed_at=iso(now),
        review_result=(
            f"{plural(len(changes), 'engineer')} corrected" if changes else "every grant matches the policy"
        ),
        changes="\n".join(c if c.startswith("- ") else f"- {c}" for c in changes)
        or "Nothing was added by hand and nothing was missing.",
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
        missing_documents=listing([DOCUMENT_LABELS[d] for d in missing], "none: all five delivered"),
        open_sessions=listing(open_sessions, "none scheduled yet"),
    )


def where(location: str | None, join_url: str | None) -> str:
    if location and join_url:
        return f"{location}, or online: {join_url}"
    if join_url:
        return f"online: {join_url}"
    return location or "to be confirmed (an update will follow)"


def session_invite(
    spec: EngagementSpec, state: EngagementState, session: HandoverSession, engagement_id: str
) -> SessionInviteFacts:
    invited = recipients(EmailKind.SESSION_INVITE, spec)
    firm = {str(spec.firm_lead.email).lower()}
    location, join_url = session.location, session.join_url
    return SessionInviteFacts(
        engagement=engagement(spec, state),
        title=session.title,
        starts_at=iso(session.starts_at),
        duration_minutes=int(session.duration.total_seconds() // 60),
        session_uid=f"{engagement_id}/{session.session_id}",
        session_sequence=session.sequence,
        where=where(location, join_url),
        location=location,
        join_url=join_url,
        attendees="\n".join(
            f"- {p.name} ({'our firm' if p.email.lower() in firm else spec.client.name})" for p in invited
        ),
        invitees=[Invitee(name=p.name, email=p.email) for p in invited],
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


def evidence_text(readbacks: list[EngineerAccessReadBack], names: dict[str, str] | None = None) -> str:
    """One line per engineer, as read back from the IAM: what was removed and what remains."""
    lines = []
    for r in readbacks:
        who = f"{names[r.email.lower()]} ({r.email})" if names and r.email.lower() in names else r.email
        removed = f"removed from {', '.join(r.removed_groups)}" if r.removed_groups else "no group was left to remove"
        holds = f"still holds {', '.join(r.groups)}" if r.groups else "holds no group"
        identity = "identity STILL ACTIVE" if r.identity_active else "identity deactivated"
        lines.append(f"- {who}: {removed}; {holds}; {identity}")
    return "\n".join(lines)


def revocation_report(
    spec: EngagementSpec, state: EngagementState, now: datetime, readbacks: list[EngineerAccessReadBack]
) -> RevocationReportFacts:
    return RevocationReportFacts(
        engagement=engagement(spec, state), revoked_at=iso(now), evidence=evidence_text(readbacks, _names(state))
    )


def emergency_revocation(
    spec: EngagementSpec, state: EngagementState, now: datetime, affected: list[EngineerState], reason: str
) -> EmergencyRevocationFacts:
    return EmergencyRevocationFacts(
        engagement=engagement(spec, state),
        engineers=engineer_lines(affected, lambda _: ": every group removed, identity deactivated"),
        reason=reason,
        revoked_at=iso(now),
    )


def access_restored(
    spec: EngagementSpec,
    state: EngagementState,
    now: datetime,
    restored: list[EngineerState],
    reason: str,
    restored_by: str,
) -> AccessRestoredFacts:
    """Once the IAM confirms it: whose access came back after an emergency revocation, and to what."""
    return AccessRestoredFacts(
        engagement=engagement(spec, state),
        engineers=engineer_lines(restored, lambda e: f", {label(e.spec.role)}: {listing(e.groups, 'no group')}"),
        reason=reason,
        restored_by=restored_by,
        restored_at=iso(now),
    )


def transition_open(spec: EngagementSpec, state: EngagementState) -> TransitionOpenFacts:
    return TransitionOpenFacts(engagement=engagement(spec, state))


def transition_closing(spec: EngagementSpec, state: EngagementState) -> TransitionClosingFacts:
    open_questions = sum(1 for q in state.questions if q.answer is None)
    return TransitionClosingFacts(engagement=engagement(spec, state), open_questions=open_questions)


def closing_report(
    spec: EngagementSpec, state: EngagementState, readbacks: list[EngineerAccessReadBack]
) -> ClosingReportFacts:
    missing = [DOCUMENT_LABELS[d] for d in missing_documents(state)]
    documents = f"{5 - len(missing)} of 5 delivered"
    held = [s.title for s in state.sessions if s.status == "held"]
    not_held = [s.title for s in state.sessions if s.status == "scheduled"]
    unanswered = [q.text for q in state.questions if not q.answer]
    answered = len(state.questions) - len(unanswered)
    sessions = plural(len(held), "session") + " held"
    if not_held:
        sessions += "; never held: " + ", ".join(not_held)
    elif not state.sessions:
        sessions = "no handover session was scheduled"
    return ClosingReportFacts(
        engagement=engagement(spec, state),
        documents=documents + (f"; missing: {', '.join(missing)}" if missing else ": nothing is missing"),
        sessions=sessions,
        questions=f"{answered} of {len(state.questions)} answered"
        + (f"; unanswered: {'; '.join(unanswered)}" if unanswered else ""),
        sweep=f"{plural(len(readbacks), 'identity', 'identities')} read back: no group membership, no active identity",
    )


def cancellation(spec: EngagementSpec, state: EngagementState, reason: str) -> CancellationFacts:
    return CancellationFacts(engagement=engagement(spec, state), reason=reason)
