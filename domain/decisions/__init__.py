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

from domain.commands import Ack, Command
from domain.decisions import certification, handover, people
from domain.decisions.change import Change, Refusal, Unexpected
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


def dry_run(
    spec: EngagementSpec,
    state: EngagementState,
    now: datetime,
    command: Command,
    engagement_id: str,
    *,
    strict: bool = True,
) -> None:
    """Decide on a copy: raises the refusal the real decision would raise, changes nothing."""
    decide(spec, state.model_copy(deep=True), now, command, engagement_id, strict=strict)
