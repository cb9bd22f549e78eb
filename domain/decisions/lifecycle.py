"""What the workflow decides by itself as time passes and the IAM answers: reminders, phase moves,
reports. The workflow owns the timers and the activities; these functions own the rules."""

from __future__ import annotations

from datetime import datetime

from domain import email_builders as facts
from domain.access import AccessPlan, plan_engineer
from domain.decisions.change import SYSTEM, Change, fmt
from domain.decisions.people import cancel
from domain.decisions.restoration import report_restoration
from domain.email_kinds import EmailKind
from domain.spec import EngagementSpec
from domain.state import Announcement, EngagementState, EngineerAccessReadBack, EngineerState, RevocationEvidence
from domain.vocabulary import CheckStatus, Phase


def plan(spec: EngagementSpec, state: EngagementState, engineer: EngineerState) -> AccessPlan:
    return plan_engineer(spec.roles, engineer, state.phase, all_suspended=state.access_suspended)


# ---------------------------------------------------------------- awaiting the NDA


def nda_deadline(spec: EngagementSpec, state: EngagementState) -> datetime:
    return state.contract_signed_at + spec.nda_deadline


def nda_reminders_sent(state: EngagementState) -> int:
    return state.email_occurrences.get(EmailKind.NDA_REMINDER, 0)


def next_nda_reminder(spec: EngagementSpec, state: EngagementState) -> datetime:
    return state.contract_signed_at + spec.nda_reminder_interval * (nda_reminders_sent(state) + 1)


def nda_overdue(change: Change) -> None:
    """The NDA deadline passed unsigned: the engagement is cancelled."""
    deadline = nda_deadline(change.spec, change.state)
    cancel(change, actor=SYSTEM, reason=f"the NDA was not signed by {fmt(deadline)}")


def remind_nda(change: Change) -> None:
    change.email(facts.nda_reminder(change.spec, change.state, nda_reminders_sent(change.state) + 1))


# ---------------------------------------------------------------- onboarding and delivery


def onboarding_waits(state: EngagementState) -> bool:
    """Onboarding ends once no current engineer's check is still to run or running."""
    return any(e.check in (CheckStatus.PENDING, CheckStatus.IN_PROGRESS) for e in state.current_engineers())


def onboarded(change: Change) -> None:
    change.email(facts.access_granted(change.spec, change.state))
    change.state.next_access_review_at = change.now + change.spec.access_review_interval
    change.enter(Phase.DELIVERY, actor=SYSTEM, reason="every engineer onboarded")


def review_due(state: EngagementState, now: datetime) -> bool:
    return state.access_review_requested or (
        state.next_access_review_at is not None and now >= state.next_access_review_at
    )


def access_reviewed(change: Change, readbacks: list[EngineerAccessReadBack]) -> None:
    state = change.state
    changes = facts.review_changes(readbacks)
    state.access_reviews_done += 1
    state.last_access_review_at = change.now
    state.access_review_requested = False
    state.next_access_review_at = change.now + change.spec.access_review_interval
    change.audit(SYSTEM, "access_review", changes=changes, engineers=len(readbacks))
    change.email(facts.access_review(change.spec, state, change.now, changes))


# ---------------------------------------------------------------- the IAM's answers


def access_applied(
    change: Change, engineer: EngineerState, readback: EngineerAccessReadBack, actor: str, reason: str
) -> None:
    engineer.scim_user_id = readback.scim_user_id or engineer.scim_user_id
    engineer.identity_active = readback.identity_active
    engineer.groups = readback.groups
    engineer.reconcile_requested = False
    engineer.requested_by = None
    change.engineer_record(engineer, actor, f"access:{reason}")


def check_started(change: Change, engineer: EngineerState, child_id: str, checks: list[str]) -> None:
    engineer.check = CheckStatus.IN_PROGRESS
    engineer.check_workflow_id = child_id
    engineer.checks_performed = checks
    change.engineer_record(engineer, SYSTEM, "check_started")


def announce(change: Change, engineer: EngineerState, announcement: Announcement) -> None:
    spec, state, role = change.spec, change.state, announcement.role
    if announcement.kind == "added":
        change.email(facts.engineer_added(spec, state, engineer, role))
    elif announcement.kind == "removed":
        change.email(facts.engineer_removed(spec, state, engineer, role))
    elif announcement.kind == "role_changed":
        change.email(facts.role_changed(spec, state, engineer, role))
    else:
        change.email(facts.check_result(spec, state, engineer, role))


def announce_all(change: Change) -> None:
    for engineer in change.state.engineers:
        while engineer.announcements:
            announce(change, engineer, engineer.announcements.pop(0))


def report_restoration_once_confirmed(change: Change) -> None:
    restoration = change.state.restoration
    if restoration is not None and report_restoration(change, restoration):
        change.state.restoration = None


def report_emergency(change: Change) -> None:
    """Once the IAM confirms an emergency revocation, tell the client with the read-back."""
    state = change.state
    emergency = state.emergency
    if emergency is None:
        return
    affected = [e for e in state.engineers if e.email in emergency.emails]
    if any(e.identity_active or e.groups for e in affected):
        return
    state.emergency = None
    change.audit(emergency.actor, "emergency_revocation_confirmed", engineers=emergency.emails)
    change.email(facts.emergency_revocation(change.spec, state, change.now, affected, emergency.reason))


# ---------------------------------------------------------------- notice, the end date, transition


def handover_reminder_due(spec: EngagementSpec, state: EngagementState, now: datetime) -> bool:
    assert state.end_date is not None
    return now >= state.end_date - spec.handover_reminder_lead and state.handover_reminder_sent_for != state.end_date


def remind_handover(change: Change) -> None:
    reminder = facts.handover_reminder(change.spec, change.state)
    if reminder is not None:
        change.email(reminder)
    change.state.handover_reminder_sent_for = change.state.end_date


def end_date_reached(change: Change) -> None:
    change.enter(Phase.TRANSITION, actor=SYSTEM, reason="end date reached: all access revoked")


def access_ended(change: Change, readbacks: list[EngineerAccessReadBack]) -> None:
    change.state.revocation = RevocationEvidence(revoked_at=change.now, engineers=readbacks)
    change.email(facts.revocation_report(change.spec, change.state, change.now, readbacks))
    change.email(facts.transition_open(change.spec, change.state))


def close_transition_notice(change: Change) -> None:
    change.state.transition_closing_sent = True
    change.email(facts.transition_closing(change.spec, change.state))


def closed(change: Change, readbacks: list[EngineerAccessReadBack]) -> None:
    change.state.closed_at = change.now
    change.email(facts.closing_report(change.spec, change.state, readbacks))
    change.enter(Phase.CLOSED, actor=SYSTEM, reason="transition window over, final sweep clean")
