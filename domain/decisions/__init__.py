"""Every command's decision as a plain function of (spec, state, now, command).

``decide`` checks the phase table, runs the command's decision, and returns what it queued and the
acknowledgement; any failure is a typed ``Refusal``. It decides on the state it is handed: the
workflow first runs it on a copy (the update's validator), so a refused command changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.commands import Ack, AddEngineer, CertifyAccess, Command, RestoreAccess, RevokeAccessNow
from domain.decisions import capacity, certification, handover, people
from domain.decisions.change import Change, ContinuingAsNew, Refusal, Unexpected
from domain.effects import Effect
from domain.phases import COMMANDS, RULES
from domain.spec import EngagementSpec
from domain.state import EngagementState

Handler = Callable[[Change, Any], str]

HANDLERS: dict[str, Handler] = {
    "record_nda_signed": people.record_nda_signed,
    "add_engineer": people.add_engineer,
    "remove_engineer": people.remove_engineer,
    "change_role": people.change_role,
    "record_check_result": people.record_check_result,
    "revoke_access_now": people.revoke_access_now,
    "restore_access": people.restore_access,
    "cancel_engagement": people.cancel_engagement,
    "retry_parked_effect": people.retry_parked_effect,
    "drop_parked_effect": people.drop_parked_effect,
    "give_notice": handover.give_notice,
    "move_end_date": handover.move_end_date,
    "record_document": handover.record_document,
    "schedule_session": handover.schedule_session,
    "reschedule_session": handover.reschedule_session,
    "cancel_session": handover.cancel_session,
    "record_session_held": handover.record_session_held,
    "ask_question": handover.ask_question,
    "answer_question": handover.answer_question,
    "request_access_review": handover.request_access_review,
    "certify_access": certification.certify_access,
}
assert set(HANDLERS) == {rule.update for rule in COMMANDS}, "every command in the phase table has a decision"


@dataclass
class Decision:
    state: EngagementState
    effects: list[Effect]
    ack: Ack


def decide(
    spec: EngagementSpec,
    state: EngagementState,
    now: datetime,
    command: Command,
    engagement_id: str = "",
    *,
    strict: bool = True,
) -> Decision:
    """Decide one command on ``state`` (changed in place); raises a ``Refusal`` and nothing else."""
    rule = RULES.get(type(command))
    if rule is None:
        raise Unexpected(f"not a command: {type(command).__name__}")
    change = Change(spec=spec, state=state, now=now, engagement_id=engagement_id, strict=strict)
    if strict:
        change.actor_source = command.actor_source
    try:
        change.require_phase(rule.phases)
        accepted = HANDLERS[rule.update](change, command)
    except Refusal:
        raise
    except Exception as error:  # a rule nobody foresaw: still a refusal, never a failed workflow task
        raise Unexpected(f"{rule.update} could not be applied: {type(error).__name__}: {error}") from None
    return Decision(state=state, effects=change.queued, ack=Ack(accepted=accepted, phase=state.phase))


def refuse_in_a_full_run(command: Command) -> None:
    """The workflow's run is full and continues as new: a command that ends access is still taken (a
    burst must not hold back a revocation or the end date); any other is refused, unapplied, for the
    next run."""
    if not RULES[type(command)].ends_access:
        raise ContinuingAsNew("the engagement's workflow is continuing as new: send the command again")


def dry_run(
    spec: EngagementSpec,
    state: EngagementState,
    now: datetime,
    command: Command,
    engagement_id: str,
    *,
    strict: bool = True,
) -> None:
    """Decide on a copy: raises the refusal the real decision would raise, or one of the engagement's
    limits (``capacity``), and changes nothing."""
    capacity.check(spec, state, command)
    decide(spec, scratch_copy(state, command), now, command, engagement_id, strict=strict)


def scratch_copy(state: EngagementState, command: Command) -> EngagementState:
    """A copy of ``state`` that deciding ``command`` may change without touching ``state``.

    Every update's validator decides on one, so it must not cost a deep copy of the whole state
    (hundreds of engineers and a long queue after a burst: seconds of a workflow task). What a
    decision changes in place is copied: the engineers the command names (every engineer for a
    revocation or restoration of everyone), the sessions, questions and small records, and, for a
    certification answer, the open round; what it only appends to or reassigns (the queues, the
    documents, the roster list) gets a list of its own with the same items. A property test
    (tests/unit/test_scratch_copy.py) holds every decision on it to the one on a deep copy.
    """
    named = _engineers_changed(command)
    engineers = [e.model_copy(deep=True) if named is None or e.email.lower() in named else e for e in state.engineers]
    certification = state.certification
    if isinstance(command, CertifyAccess) and certification is not None:
        certification = certification.model_copy(deep=True)
    small = ("notice", "emergency", "restoration")
    return state.model_copy(
        update={
            "engineers": engineers,
            "certification": certification,
            "sessions": [s.model_copy(deep=True) for s in state.sessions],
            "questions": [q.model_copy(deep=True) for q in state.questions],
            "documents": list(state.documents),
            "delivery_problems": list(state.delivery_problems),
            "email_occurrences": dict(state.email_occurrences),
            "effects": list(state.effects),
            "parked": list(state.parked),
            "alerts": list(state.alerts),
            "checks_to_cancel": list(state.checks_to_cancel),
            **{name: value.model_copy(deep=True) for name in small if (value := getattr(state, name)) is not None},
        }
    )


def _engineers_changed(command: Command) -> frozenset[str] | None:
    """The engineers (lower-case emails) deciding ``command`` may change; None: any of them."""
    if isinstance(command, AddEngineer):
        return frozenset({str(command.engineer.email).lower()})
    email = getattr(command, "email", None)
    if email is not None:
        return frozenset({str(email).lower()})
    if isinstance(command, RevokeAccessNow | RestoreAccess):
        return None  # everyone's access
    return frozenset()
