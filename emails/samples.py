"""Representative facts for a preview of any email of a spec, built by the same builders the
workflow uses, from an engagement state imagined along the spec's own durations."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

from domain import certification_emails, screening_emails
from domain import email_builders as build
from domain.email_facts import EmailFacts
from domain.email_kinds import ENGINEER_ADDRESSED, EmailKind, Recipient, recipients
from domain.spec import EngagementSpec
from domain.state import (
    Certification,
    CertificationEntry,
    EngagementState,
    EngineerAccessReadBack,
    EngineerState,
    HandoverSession,
    Question,
)
from domain.vocabulary import CheckStatus


def _sample_state(spec: EngagementSpec) -> tuple[EngagementState, datetime]:
    signed = datetime.combine(spec.start_date, time(9, 0), tzinfo=UTC)
    notice = signed + timedelta(days=180)
    end = notice + spec.notice_period
    engineers = []
    for e in spec.engineers:
        policy = spec.roles[e.role]
        cleared = e.production_access
        groups = policy.non_production + (policy.production if cleared else [])
        engineers.append(
            EngineerState(
                spec=e,
                check=CheckStatus.CLEARED if cleared else CheckStatus.NOT_REQUIRED,
                checks_performed=["credentials_verification", "criminal_record"] if cleared else [],
                identity_active=True,
                groups=sorted(groups),
            )
        )
    session_at = end - spec.handover_reminder_lead - timedelta(days=1)
    while session_at.weekday() >= 5:  # a working day, like a real session
        session_at -= timedelta(days=1)
    state = EngagementState(
        contract_signed_at=signed,
        nda_signed_at=signed + timedelta(days=2),
        engineers=engineers,
        end_date=end,
        transition_ends_at=end + spec.transition_window,
        sessions=[
            HandoverSession(
                session_id="arch-1",
                title="Architecture walkthrough",
                starts_at=session_at,
                duration=timedelta(hours=1),
                location="Meeting room 2, client office",
                join_url="https://meet.example/arch-1",
            )
        ],
        questions=[
            Question(
                question_id="q1", text="Where is the DR plan?", asked_by="client", asked_at=end + timedelta(days=2)
            )
        ],
    )
    return state, notice


def _readbacks(state: EngagementState) -> list[EngineerAccessReadBack]:
    return [
        EngineerAccessReadBack(
            email=e.email, scim_user_id=None, identity_active=False, groups=[], removed_groups=e.groups
        )
        for e in state.engineers
    ]


def _present(facts: EmailFacts | None) -> EmailFacts:
    assert facts is not None, "the sample state always has handover items missing"
    return facts


def sample_facts(kind: EmailKind, spec: EngagementSpec) -> dict[str, Any]:
    """Representative facts for one email of this kind (for previews and tests)."""
    return _builders(spec)[kind]().as_dict()


def _builders(spec: EngagementSpec) -> dict[EmailKind, Callable[[], EmailFacts]]:
    state, notice = _sample_state(spec)
    engineer = next((e for e in state.engineers if e.spec.production_access), state.engineers[0])
    role = engineer.spec.role
    session = state.sessions[0]
    contract = spec.contract_id
    checks = ["credentials_verification", "criminal_record"]
    review = build.review_changes(
        [
            EngineerAccessReadBack(
                email=engineer.email,
                scim_user_id=None,
                identity_active=True,
                groups=engineer.groups,
                removed_groups=["hand-added-group"],
            )
        ]
    )
    ended = _readbacks(state)
    review_at = notice - timedelta(days=30)
    certification = Certification(
        round=3,
        opened_at=review_at,
        due_at=review_at + spec.certification_due,
        engineers=[
            CertificationEntry(email=e.email, name=e.spec.name, role=e.spec.role, groups=e.groups)
            for e in state.engineers
        ],
    )
    link = "https://certify.firm.example/c/eyJlIjoiZW5nYWdlbWVudC1BQ01FIn0.c2FtcGxlLXNpZ25hdHVyZQ"
    # The samples' one emergency: access revoked, then restored three hours later.
    revoked_at = notice + timedelta(days=3, hours=2)
    compromise = "suspected credential compromise reported by the client's security team"
    assert state.end_date is not None
    end: datetime = state.end_date
    return {
        EmailKind.NDA_REQUEST: lambda: build.nda_request(spec, state),
        EmailKind.NDA_REMINDER: lambda: build.nda_reminder(spec, state, 1),
        EmailKind.NDA_RECORDED: lambda: build.nda_recorded(spec, state, spec.client.contacts.signatory.name),
        EmailKind.CHECK_CONSENT_REQUEST: lambda: build.check_consent(spec.client.name, engineer.spec, checks),
        EmailKind.CHECK_CONSENT_REMINDER: lambda: build.check_consent_reminder(spec.client.name, engineer.spec, checks),
        EmailKind.CHECK_RESULT: lambda: build.check_result(spec, state, engineer, role),
        EmailKind.ACCESS_GRANTED: lambda: build.access_granted(spec, state),
        EmailKind.ENGINEER_ADDED: lambda: build.engineer_added(spec, state, engineer, role),
        EmailKind.ENGINEER_REMOVED: lambda: build.engineer_removed(
            spec, state, engineer.model_copy(update={"identity_active": False, "groups": []}), role
        ),
        EmailKind.ROLE_CHANGED: lambda: build.role_changed(spec, state, engineer, role),
        EmailKind.ACCESS_REVIEW: lambda: build.access_review(spec, state, notice - timedelta(days=30), review),
        EmailKind.NOTICE_RECEIVED: lambda: build.notice_received(spec, state, "client", notice),
        EmailKind.END_DATE_MOVED: lambda: build.end_date_moved(
            spec, state, end - timedelta(days=14), "the incoming team starts later"
        ),
        EmailKind.HANDOVER_REMINDER: lambda: _present(build.handover_reminder(spec, state)),
        EmailKind.SESSION_INVITE: lambda: build.session_invite(spec, state, session, contract),
        EmailKind.SESSION_RESCHEDULED: lambda: build.session_rescheduled(
            spec, state, session.model_copy(update={"sequence": 1}), contract
        ),
        EmailKind.SESSION_CANCELLED: lambda: build.session_cancelled(
            spec, state, session.model_copy(update={"sequence": 2}), contract, "the incoming team is not ready"
        ),
        EmailKind.REVOCATION_REPORT: lambda: build.revocation_report(spec, state, end, ended),
        EmailKind.EMERGENCY_REVOCATION: lambda: build.emergency_revocation(
            spec, state, revoked_at, [engineer], compromise
        ),
        EmailKind.ACCESS_RESTORED: lambda: build.access_restored(
            spec, state, revoked_at + timedelta(hours=3), [engineer], compromise, spec.firm_lead.name
        ),
        EmailKind.TRANSITION_OPEN: lambda: build.transition_open(spec, state),
        EmailKind.TRANSITION_CLOSING: lambda: build.transition_closing(spec, state),
        EmailKind.CLOSING_REPORT: lambda: build.closing_report(spec, state, ended),
        EmailKind.CANCELLATION: lambda: build.cancellation(
            spec, state, "the contract was withdrawn before the NDA was signed"
        ),
        EmailKind.CHECK_PROGRESS: lambda: screening_emails.check_progress(
            spec.client.name, engineer.spec, checks, "adverse_action", notice + timedelta(days=7)
        ),
        EmailKind.ACCESS_CERTIFICATION: lambda: certification_emails.access_certification(
            spec, state, certification
        ).model_copy(update={"link": link}),
        EmailKind.CERTIFICATION_ESCALATION: lambda: certification_emails.certification_escalation(
            spec, state, certification, certification.engineers
        ),
        EmailKind.CHECK_PRE_ADVERSE_NOTICE: lambda: screening_emails.check_pre_adverse_notice(
            spec.client.name, engineer.spec, checks, notice + timedelta(days=7)
        ),
    }


def sample_recipient(kind: EmailKind, spec: EngagementSpec) -> Recipient:
    """Who a preview is addressed to by default: the first recipient of the kind."""
    if kind in ENGINEER_ADDRESSED:
        e = next((e for e in spec.engineers if e.production_access), spec.engineers[0])
        return Recipient(name=e.name, email=str(e.email), timezone=e.timezone)
    return recipients(kind, spec)[0]
