"""Access certification: at each periodic review the client's IAM owner keeps or revokes each engineer.

``open_round`` follows a review (for engagements whose spec sets ``certification_default``): it lists
every current engineer with the role and the groups the IAM just read back, and queues the
``access_certification`` email (its signed link is added by the email activity: the key never
enters a workflow). ``certify_access`` records one answer; ``revoke`` suspends the engineer the way
``revoke-now`` does, so the IAM lane revokes at once and reads it back. ``apply_default`` runs at the
due date on whoever is left undecided. One round is open at a time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from domain import certification_emails as facts
from domain.commands import CertifyAccess
from domain.decisions.change import SYSTEM, Change, NoChange, Refusal, UnknownEngineer
from domain.state import Certification, CertificationEntry, EngagementState


class WrongRound(Refusal):
    """A decision for a certification round that is not the open one (closed, future, or none)."""


def enabled(change: Change) -> bool:
    return change.spec.certification_default is not None


def due(state: EngagementState, now: datetime) -> bool:
    return state.certification is not None and now >= state.certification.due_at


def due_at(state: EngagementState) -> datetime | None:
    return state.certification.due_at if state.certification is not None else None


def or_due(state: EngagementState, moment: datetime | None, label: str) -> tuple[datetime | None, str]:
    """The earlier of a phase's next moment and the open certification round's due date."""
    due = due_at(state)
    if due is not None and (moment is None or due < moment):
        return due, "access certification due"
    return moment, label


def open_round(change: Change) -> Certification | None:
    """After a review: open the next round, unless one is still open or nobody is on the engagement."""
    state, spec = change.state, change.spec
    if not enabled(change) or state.certification is not None:
        return None
    engineers = [
        CertificationEntry(email=e.email, name=e.spec.name, role=e.spec.role, groups=sorted(e.groups))
        for e in state.current_engineers()
    ]
    if not engineers:
        return None
    state.certification_rounds += 1
    # Never due after the next review: the next round must find this one closed.
    window = min(spec.certification_due, spec.access_review_interval)
    certification = Certification(
        round=state.certification_rounds, opened_at=change.now, due_at=change.now + window, engineers=engineers
    )
    state.certification = certification
    change.audit(
        SYSTEM,
        "certification_opened",
        round=certification.round,
        due_at=certification.due_at.isoformat(),
        engineers=[e.email for e in engineers],
    )
    change.email(facts.access_certification(spec, state, certification))
    return certification


def _revoke(change: Change, entry: CertificationEntry, actor: str) -> None:
    engineer = change.state.engineer(entry.email)
    if engineer is None or engineer.removed:
        return
    # As revoke-now: the IAM lane revokes at once and reads it back.
    engineer.suspended, engineer.suspended_for = True, "access certification"
    engineer.requested_by = actor


def _close_if_done(change: Change) -> None:
    certification = change.state.certification
    if certification is not None and not certification.undecided():
        change.audit(SYSTEM, "certification_closed", round=certification.round)
        change.state.certification = None


def certify_access(change: Change, command: CertifyAccess) -> str:
    certification = change.state.certification
    if certification is None:
        raise WrongRound(f"no certification round is open (round {command.round} is closed or unknown)")
    if command.round != certification.round:
        raise WrongRound(f"round {command.round} is not the open certification round ({certification.round})")
    entry = certification.entry(str(command.email))
    if entry is None:
        raise UnknownEngineer(f"no engineer {command.email} in certification round {certification.round}")
    if entry.decision is not None:
        raise NoChange(f"{command.email} was already decided in round {certification.round}: {entry.decision}")
    change.require_engineer(entry.email)  # removed since the round opened: nothing left to certify
    entry.decision = command.decision
    entry.decided_by = command.actor
    entry.decided_at = change.now
    if command.decision == "revoke":
        _revoke(change, entry, command.actor)
    change.audit(
        command.actor,
        "certification_decided",
        round=certification.round,
        engineer=entry.email,
        decision=command.decision,
    )
    _close_if_done(change)
    if command.decision == "revoke":
        return f"{entry.email}: access is being revoked now (round {certification.round})"
    return f"{entry.email}: access kept (round {certification.round})"


def apply_default(change: Change) -> Literal["keep", "revoke"] | None:
    """The due date passed: the spec's rule decides for everyone left undecided, and the round closes."""
    state, spec = change.state, change.spec
    certification = state.certification
    if certification is None:
        return None
    rule = spec.certification_default or "keep"
    left = [e for e in certification.undecided() if (eng := state.engineer(e.email)) is not None and not eng.removed]
    for entry in certification.undecided():
        entry.decision = rule
        entry.decided_by = SYSTEM
        entry.decided_at = change.now
        entry.default_applied = True
    for entry in left:
        if rule == "revoke":
            _revoke(change, entry, SYSTEM)
    if left:
        change.audit(
            SYSTEM,
            "certification_default_applied",
            round=certification.round,
            decision=rule,
            engineers=[e.email for e in left],
        )
        if rule == "keep":
            change.alert(
                "certification_unanswered",
                f"certification round {certification.round} was not answered by its due date: "
                f"{len(left)} engineer(s) kept; the firm's lead should follow up with the client",
                round=certification.round,
                engineers=len(left),
            )
            change.email(facts.certification_escalation(spec, state, certification, left))
    _close_if_done(change)
    return rule


def close_at_end(change: Change) -> None:
    """The end date revokes everyone: a round still open has nothing left to decide."""
    certification = change.state.certification
    if certification is not None:
        change.audit(SYSTEM, "certification_closed", round=certification.round, reason="end date")
        change.state.certification = None
