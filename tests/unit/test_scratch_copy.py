"""The validators decide on a scratch copy of the state (``domain.decisions.scratch_copy``) instead of a
deep copy of all of it: whatever is sent, in any phase and after any earlier commands, the decision on
the scratch copy refuses or accepts exactly as the decision on a deep copy does, leaves the same
state and queues the same effects, and never changes the state it was copied from."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.commands import Command
from domain.decisions import decide, dry_run, scratch_copy
from domain.decisions.change import Refusal
from domain.effects import EmailEffect, ParkedEffect
from domain.email_kinds import EmailKind
from domain.state import EngagementState
from domain.vocabulary import Phase
from tests.unit.test_decisions import COMMAND_STRATEGIES, NOW, SPEC, state_in


def outcome(state: EngagementState, command: Command) -> tuple[Any, ...]:
    """What deciding ``command`` on ``state`` gives: the refusal, or the acknowledgement, effects and state."""
    try:
        decision = decide(SPEC, state, NOW, command, "engagement-x")
    except Refusal as refusal:
        return ("refused", type(refusal), refusal.message)
    return ("accepted", decision.ack, [e.model_dump() for e in decision.effects], state.model_dump())


def with_a_parked_effect(state: EngagementState) -> EngagementState:
    email = EmailEffect(id=1, kind=EmailKind.ACCESS_REVIEW, step="x", occurrence=1, recipients=[], facts={})
    state.parked = [ParkedEffect(effect=email, parked_at=NOW, last_error="HTTP 500", retry_at=NOW)]
    return state


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    phase=st.sampled_from(list(Phase)),
    parked=st.booleans(),
    commands=st.lists(st.one_of(COMMAND_STRATEGIES), min_size=1, max_size=8),
)
def test_the_decision_on_a_scratch_copy_is_the_decision_on_a_deep_copy(
    phase: Phase, parked: bool, commands: list[Command]
) -> None:
    state = state_in(phase)
    if parked:
        state = with_a_parked_effect(state)
    for command in commands:
        before = state.model_dump()
        on_scratch = outcome(scratch_copy(state, command), command)
        assert state.model_dump() == before, "deciding on the scratch copy changed the state itself"
        assert on_scratch == outcome(state.model_copy(deep=True), command)
        try:
            dry_run(SPEC, state, NOW, command, "engagement-x")
        except Refusal as refusal:
            assert on_scratch[:2] == ("refused", type(refusal))
        else:
            assert on_scratch[0] == "accepted"
        if on_scratch[0] == "accepted":  # the engagement moves on, as the update's handler would move it
            decide(SPEC, state, NOW, command, "engagement-x")
