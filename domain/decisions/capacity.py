"""How much one engagement holds: limits every validator applies, so no run of accepted commands can
make the state too large to carry into the next run.

The whole state travels as the continue-as-new input, and the server refuses a payload over 2 MB by
default: a state that outgrew it could never continue as new again, and a workflow that cannot
continue as new is wedged, end date and revocations included. Every list a command can grow is
bounded here (``tests/unit/test_capacity.py`` builds the largest state the limits allow).

Validators only (``dry_run``): a history accepted before a limit existed replays as it ran.
"""

from __future__ import annotations

from domain.commands import (
    AddEngineer,
    AnswerQuestion,
    AskQuestion,
    Command,
    MoveEndDate,
    RecordSessionHeld,
    RevokeAccessNow,
    ScheduleSession,
)
from domain.decisions.change import LimitReached
from domain.phases import RULES
from domain.spec import MAX_ENGINEERS, EngagementSpec
from domain.state import EngagementState

MAX_ENGINEER_RECORDS = 2 * MAX_ENGINEERS
"""Engineers on record, those removed included (their grants are read back until the final sweep)."""
MAX_SESSIONS = 50
MAX_QUESTIONS = 200
MAX_DELIVERY_PROBLEMS = 100
"""Emails that will not arrive, as status shows them (SendGrid reports them by signal: the newest)."""
CARRIED_BYTES = 1_500_000
"""What a run may carry into the next at most (spec and state, as JSON), of the server's 2 MB: past
it, only what takes access away (``_takes_access_away``) is taken until the side effects waiting
have been done."""
QUEUE_BEFORE_MEASURING = 100
"""Side effects waiting before a validator measures the carried size (a dump of the whole state)."""
HANDOVER_TEXT_BUDGET = 250_000
"""Characters of questions, answers and session notes together."""


TEXT_FIELDS: dict[type[Command], str] = {AskQuestion: "text", AnswerQuestion: "answer", RecordSessionHeld: "notes"}
"""The commands that add handover text, and the field that holds it."""


def handover_text(state: EngagementState) -> int:
    questions = sum(len(q.text) + len(q.answer or "") for q in state.questions)
    return questions + sum(len(s.notes or "") for s in state.sessions)


def _takes_access_away(state: EngagementState, command: Command) -> bool:
    """A command a backlog never holds back: it ends access, and each can be taken only so often (a
    revocation of someone not yet suspended, a removal, a certification answer, the cancellation).
    Moving the end date can be sent again and again: it waits with everything else."""
    if not RULES[type(command)].ends_access or isinstance(command, MoveEndDate):
        return False
    if isinstance(command, RevokeAccessNow):
        if command.email is None:
            return not state.access_suspended
        engineer = state.engineer(str(command.email))
        return engineer is not None and not engineer.suspended and not state.access_suspended
    return True


def carried_bytes(spec: EngagementSpec, state: EngagementState) -> int:
    return len(spec.model_dump_json()) + len(state.model_dump_json())


def check(spec: EngagementSpec, state: EngagementState, command: Command) -> None:
    """Refuse (``LimitReached``) a command that would take the engagement past a limit."""
    waiting = len(state.effects)
    if waiting > QUEUE_BEFORE_MEASURING and not _takes_access_away(state, command):
        if carried_bytes(spec, state) > CARRIED_BYTES:
            raise LimitReached(
                f"the engagement has {waiting} side effects waiting (emails, records): send the command again"
                " once `status` shows fewer pending; revocations are still taken"
            )
    if isinstance(command, AddEngineer):
        on_it = sum(1 for e in state.engineers if not e.removed)
        if on_it >= MAX_ENGINEERS:
            raise LimitReached(f"an engagement has at most {MAX_ENGINEERS} engineers at once: remove one first")
        if state.engineer(str(command.engineer.email)) is None and len(state.engineers) >= MAX_ENGINEER_RECORDS:
            raise LimitReached(f"this engagement has {MAX_ENGINEER_RECORDS} engineers on record: start a new one")
    elif isinstance(command, ScheduleSession) and len(state.sessions) >= MAX_SESSIONS:
        raise LimitReached(f"an engagement has at most {MAX_SESSIONS} handover sessions")
    elif isinstance(command, AskQuestion) and len(state.questions) >= MAX_QUESTIONS:
        raise LimitReached(f"an engagement has at most {MAX_QUESTIONS} transition questions")
    added = TEXT_FIELDS.get(type(command))
    if added is not None and handover_text(state) + len(getattr(command, added) or "") > HANDOVER_TEXT_BUDGET:
        raise LimitReached(
            f"the engagement's questions, answers and session notes are at their limit ({HANDOVER_TEXT_BUDGET:,}"
            " characters): keep longer texts in the handover documents"
        )
