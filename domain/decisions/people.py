"""Decisions about the people on an engagement: the NDA, engineers, their roles and checks, the
emergency brake, cancellation, and the facts reported by signal."""

from __future__ import annotations

from typing import Literal

from domain import email_builders as facts
from domain.commands import (
    AddEngineer,
    CancelEngagement,
    ChangeRole,
    DropParkedEffect,
    RecordCheckResult,
    RecordNdaSigned,
    RemoveEngineer,
    RestoreAccess,
    RetryParkedEffect,
    RevokeAccessNow,
)
from domain.decisions.capacity import MAX_DELIVERY_PROBLEMS
from domain.decisions.change import (
    Change,
    CheckFailed,
    DuplicateEngineer,
    NoChange,
    NoCheckInProgress,
    UnknownEffect,
)
from domain.decisions.restoration import begin_restoration
from domain.effects import ParkedEffect, describe
from domain.state import (
    Announcement,
    CheckCompleted,
    DeliveryProblem,
    EmergencyRevocation,
    EngineerState,
)
from domain.vocabulary import CheckStatus, Phase


def record_nda_signed(change: Change, command: RecordNdaSigned) -> str:
    state = change.state
    state.nda_signed_at = change.now
    state.nda_signed_by = command.signed_by
    change.audit(command.actor, "nda_signed", signed_by=command.signed_by)
    change.email(facts.nda_recorded(change.spec, state, command.signed_by))
    change.enter(Phase.ONBOARDING, actor=command.actor, reason=f"NDA signed by {command.signed_by}")
    return "NDA recorded as signed; onboarding begins"


def add_engineer(change: Change, command: AddEngineer) -> str:
    spec = command.engineer
    state = change.state
    existing = state.engineer(str(spec.email))
    if existing is not None and not existing.removed:
        raise DuplicateEngineer(f"{spec.email} is already on this engagement")
    change.require_role(spec.role, spec.production_access)
    engineer = EngineerState(
        spec=spec,
        check=CheckStatus.PENDING if spec.production_access else CheckStatus.NOT_REQUIRED,
        announcements=[Announcement(kind="added", role=spec.role)],
        requested_by=command.actor,
    )
    if existing is not None:  # a removed engineer who comes back starts afresh
        state.engineers.remove(existing)
        engineer.scim_user_id = existing.scim_user_id
    state.engineers.append(engineer)
    change.audit(command.actor, "engineer_added", engineer=engineer.email, role=spec.role)
    return f"{spec.email} added as {spec.role}; onboarding follows"


def remove_engineer(change: Change, command: RemoveEngineer) -> str:
    engineer = change.require_engineer(str(command.email))
    if change.strict:  # a removed engineer's check is closed, never left in progress
        if engineer.check is CheckStatus.IN_PROGRESS and engineer.check_workflow_id:
            change.state.checks_to_cancel.append(engineer.check_workflow_id)
            engineer.check = CheckStatus.CANCELLED
        elif engineer.check is CheckStatus.PENDING:
            engineer.check = CheckStatus.CANCELLED
    engineer.removed = True
    engineer.announcements.append(Announcement(kind="removed", role=engineer.spec.role))
    engineer.requested_by = command.actor
    change.audit(command.actor, "engineer_removed", engineer=engineer.email)
    return f"{command.email} removed; every grant is being revoked"


def change_role(change: Change, command: ChangeRole) -> str:
    engineer = change.require_engineer(str(command.email))
    production = engineer.spec.production_access if command.production_access is None else command.production_access
    change.require_role(command.role, production)
    if engineer.check is CheckStatus.FAILED and production:
        raise CheckFailed(f"{command.email} failed the background check")
    if command.role == engineer.spec.role and production == engineer.spec.production_access:
        raise NoChange(f"{command.email} already has role {command.role}")
    engineer.spec = engineer.spec.model_copy(update={"role": command.role, "production_access": production})
    if production and engineer.check in (CheckStatus.NOT_REQUIRED, CheckStatus.CANCELLED):
        engineer.check = CheckStatus.PENDING
    engineer.announcements.append(Announcement(kind="role_changed", role=command.role))
    engineer.requested_by = command.actor
    change.audit(command.actor, "role_changed", engineer=engineer.email, role=command.role)
    return f"{command.email} is now {command.role}; grants follow the new role"


def check_to_signal(change: Change, command: RecordCheckResult) -> str:
    """The running check workflow that should receive a manually recorded result."""
    engineer = change.require_engineer(str(command.email))
    if engineer.check is not CheckStatus.IN_PROGRESS or engineer.check_workflow_id is None:
        raise NoCheckInProgress(f"{command.email} has no background check in progress (check: {engineer.check.value})")
    return engineer.check_workflow_id


def record_check_result(change: Change, command: RecordCheckResult) -> str:
    check_to_signal(change, command)
    change.require_engineer(str(command.email)).check_result_sent = True
    return f"check result for {command.email} recorded: {command.outcome}"


def revoke_access_now(change: Change, command: RevokeAccessNow) -> str:
    """The emergency brake: revoke now, in any running phase, one engineer or everyone."""
    state = change.state
    if command.email is None:
        state.access_suspended = True
        targets = state.engineers
    else:
        targets = [change.require_engineer(str(command.email))]
        targets[0].suspended, targets[0].suspended_for = True, "emergency"
    for engineer in targets:
        engineer.requested_by = command.actor
    affected = [e.email for e in targets]
    previous = state.emergency.emails if state.emergency else []
    state.emergency = EmergencyRevocation(
        actor=command.actor,
        reason=command.reason,
        requested_at=change.now,
        emails=sorted(set(previous) | set(affected)),
    )
    state.last_emergency_reason = command.reason
    change.audit(command.actor, "emergency_revocation", engineers=affected, reason=command.reason)
    who = "every engineer" if command.email is None else str(command.email)
    return f"revoking {who}'s access now; the client is told once the IAM confirms it"


def restore_access(change: Change, command: RestoreAccess) -> str:
    state = change.state
    if command.email is None:
        if not state.access_suspended and not any(e.suspended for e in state.engineers):
            raise NoChange("no access is suspended")
        targets = state.engineers
        state.access_suspended = False
    else:
        engineer = change.require_engineer(str(command.email))
        if state.access_suspended:
            raise NoChange("every engineer's access is suspended: restore the engagement first")
        if not engineer.suspended:
            raise NoChange(f"{command.email}'s access is not suspended")
        targets = [engineer]
    for target in targets:
        target.suspended, target.suspended_for = False, None
        target.requested_by = command.actor
    if change.strict:  # the client, told of the revocation, is told of the restoration once confirmed
        state.restoration = begin_restoration(change, command.actor, targets)
    change.audit(command.actor, "access_restored", engineer=str(command.email) if command.email else "all")
    return "access restored to the policy"


def cancel(change: Change, *, actor: str, reason: str) -> None:
    change.state.cancelled_reason = reason
    change.email(facts.cancellation(change.spec, change.state, reason))
    change.enter(Phase.CANCELLED, actor=actor, reason=reason)


def cancel_engagement(change: Change, command: CancelEngagement) -> str:
    cancel(change, actor=command.actor, reason=command.reason)
    return "engagement cancelled; any access is being revoked"


# ---------------------------------------------------------------- facts reported by signal


def check_completed(change: Change, result: CheckCompleted) -> Literal["stale", "unchanged", "recorded"]:
    """A check's outcome, unless it comes from a check that is no longer current or already decided."""
    engineer = change.state.engineer(result.email)
    if engineer is None or engineer.check_workflow_id != result.check_workflow_id:
        return "stale"
    if engineer.check is not CheckStatus.IN_PROGRESS:
        return "unchanged"
    engineer.check_result_sent = False
    engineer.check = CheckStatus.CLEARED if result.outcome == "cleared" else CheckStatus.FAILED
    engineer.checks_performed = result.checks
    engineer.announcements.append(Announcement(kind="check_result", role=engineer.spec.role))
    engineer.requested_by = f"background-check ({engineer.check.value})"
    change.audit(
        "background-check", "check_completed", engineer=engineer.email, outcome=result.outcome, notes=result.notes
    )
    return "recorded"


def delivery_problem(change: Change, problem: DeliveryProblem) -> bool:
    """SendGrid says an email will not arrive: keep it for status; False for a duplicate."""
    if any(p.message_key == problem.message_key for p in change.state.delivery_problems):
        return False
    change.state.delivery_problems.append(problem)
    del change.state.delivery_problems[:-MAX_DELIVERY_PROBLEMS]  # the newest; all of them are audited
    change.audit("sendgrid", "email_delivery_problem", **problem.model_dump(mode="json"))
    return True


# ---------------------------------------------------------------- side effects set aside


def _parked(change: Change, effect_id: int) -> ParkedEffect:
    parked = next((p for p in change.state.parked if p.effect.id == effect_id), None)
    if parked is None:
        known = ", ".join(str(p.effect.id) for p in change.state.parked) or "none"
        raise UnknownEffect(f"no parked effect {effect_id} (parked: {known})")
    return parked


def retry_parked_effect(change: Change, command: RetryParkedEffect) -> str:
    state = change.state
    if command.effect_id is None:
        if not state.parked:
            raise NoChange("no effect is parked")
        chosen = list(state.parked)
    else:
        chosen = [_parked(change, command.effect_id)]
    for parked in chosen:
        state.parked.remove(parked)
        state.effects.append(parked.effect)
        change.audit(command.actor, "parked_effect_retried", effect=describe(parked.effect), reason=command.reason)
    return f"{len(chosen)} parked effect(s) queued again"


def drop_parked_effect(change: Change, command: DropParkedEffect) -> str:
    parked = _parked(change, command.effect_id)
    change.state.parked.remove(parked)
    change.audit(
        command.actor,
        "parked_effect_dropped",
        effect=describe(parked.effect),
        last_error=parked.last_error,
        reason=command.reason,
    )
    return f"parked effect {command.effect_id} dropped: {describe(parked.effect)}"
