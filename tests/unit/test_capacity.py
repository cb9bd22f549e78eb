"""The engagement's limits: each refuses with a typed refusal and changes nothing, and the largest
state they allow still travels as a continue-as-new input (the server refuses one over 2 MB)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.commands import (
    AddEngineer,
    AnswerQuestion,
    AskQuestion,
    RecordSessionHeld,
    RemoveEngineer,
    RevokeAccessNow,
    ScheduleSession,
)
from domain.decisions import decide, dry_run
from domain.decisions.capacity import (
    CARRIED_BYTES,
    HANDOVER_TEXT_BUDGET,
    MAX_DELIVERY_PROBLEMS,
    MAX_ENGINEER_RECORDS,
    MAX_QUESTIONS,
    MAX_SESSIONS,
    QUEUE_BEFORE_MEASURING,
)
from domain.decisions.change import Change, LimitReached
from domain.decisions.people import delivery_problem
from domain.effects import AuditEffect
from domain.spec import MAX_ENGINEERS, EngineerSpec
from domain.state import DeliveryProblem, EngagementInput, EngineerState, HandoverSession, Question
from domain.vocabulary import CheckStatus, Phase
from tests.unit.test_decisions import NOW, SPEC, state_in

SERVER_PAYLOAD_LIMIT = 2 * 1024 * 1024
LONG = "x" * 4000  # LongText's limit


def engineer(n: int, *, removed: bool = False, long: bool = False) -> EngineerState:
    name = (f"Engineer {n} " + "N" * 200)[:200] if long else f"Engineer {n}"
    local = (f"e{n}." + "l" * 64)[:64] if long else f"e{n}"
    spec = EngineerSpec(name=name, email=f"{local}@firm.example", role="analyst", jurisdiction="PT")
    return EngineerState(spec=spec, check=CheckStatus.NOT_REQUIRED, removed=removed, groups=["ticketing"])


def refused_unchanged(state_phase: Phase, fill: object, command: object) -> None:
    state = state_in(state_phase)
    fill(state)  # type: ignore[operator]
    before = state.model_dump_json()
    with pytest.raises(LimitReached):
        dry_run(SPEC, state, NOW, command, "engagement-x")  # type: ignore[arg-type]
    assert state.model_dump_json() == before


def test_engineers_on_the_engagement_at_once() -> None:
    def fill(state: object) -> None:
        state.engineers = [engineer(n) for n in range(MAX_ENGINEERS)]  # type: ignore[attr-defined]

    new = EngineerSpec(name="One More", email="more@firm.example", role="analyst", jurisdiction="PT")
    refused_unchanged(Phase.DELIVERY, fill, AddEngineer(actor="erin", engineer=new))


def test_engineers_on_record_and_a_removed_one_may_come_back() -> None:
    state = state_in(Phase.DELIVERY)
    state.engineers = [engineer(n, removed=True) for n in range(MAX_ENGINEER_RECORDS)]
    new = EngineerSpec(name="One More", email="more@firm.example", role="analyst", jurisdiction="PT")
    with pytest.raises(LimitReached, match="on record"):
        dry_run(SPEC, state, NOW, AddEngineer(actor="erin", engineer=new), "engagement-x")
    back = state.engineers[0].spec
    dry_run(SPEC, state, NOW, AddEngineer(actor="erin", engineer=back), "engagement-x")  # reuses its record


def test_sessions_questions_and_their_text() -> None:
    def sessions(state: object) -> None:
        state.sessions = [  # type: ignore[attr-defined]
            HandoverSession(session_id=f"s{n}", title="t", starts_at=NOW, duration=timedelta(hours=1))
            for n in range(MAX_SESSIONS)
        ]

    later = NOW + timedelta(days=3)
    refused_unchanged(Phase.NOTICE, sessions, ScheduleSession(actor="f", session_id="new", title="t", starts_at=later))

    def questions(state: object) -> None:
        state.questions = [  # type: ignore[attr-defined]
            Question(question_id=f"q{n}", text="?", asked_by="c", asked_at=NOW) for n in range(MAX_QUESTIONS)
        ]

    refused_unchanged(Phase.TRANSITION, questions, AskQuestion(actor="c", question_id="new", text="?"))

    def texts(state: object) -> None:
        count = HANDOVER_TEXT_BUDGET // len(LONG)
        state.questions = [  # type: ignore[attr-defined]
            Question(question_id=f"q{n}", text=LONG, asked_by="c", asked_at=NOW) for n in range(count)
        ]

    refused_unchanged(Phase.TRANSITION, texts, AskQuestion(actor="c", question_id="new", text=LONG))
    refused_unchanged(Phase.TRANSITION, texts, AnswerQuestion(actor="c", question_id="q0", answer=LONG))


def test_a_session_s_notes_count_too() -> None:
    state = state_in(Phase.NOTICE)
    state.sessions[0].starts_at = NOW - timedelta(hours=2)  # it has taken place
    state.questions = [
        Question(question_id=f"q{n}", text=LONG, asked_by="c", asked_at=NOW)
        for n in range(HANDOVER_TEXT_BUDGET // len(LONG))
    ]
    with pytest.raises(LimitReached):
        dry_run(SPEC, state, NOW, RecordSessionHeld(actor="f", session_id="s1", notes=LONG), "engagement-x")
    dry_run(SPEC, state, NOW, RecordSessionHeld(actor="f", session_id="s1"), "engagement-x")  # no notes: fine


def test_the_largest_state_the_limits_allow_still_continues_as_new() -> None:
    state = state_in(Phase.TRANSITION)
    state.engineers = [engineer(n, removed=n >= MAX_ENGINEERS, long=True) for n in range(MAX_ENGINEER_RECORDS)]
    state.sessions = [
        HandoverSession(
            session_id=f"s{n}",
            title="T" * 200,
            starts_at=NOW,
            duration=timedelta(hours=1),
            location="L" * 2000,
            join_url="https://meet.example/" + "u" * 1970,
        )
        for n in range(MAX_SESSIONS)
    ]
    per_question = HANDOVER_TEXT_BUDGET // MAX_QUESTIONS // 2
    state.questions = [
        Question(
            question_id=f"q{n}", text="Q" * per_question, asked_by="c" * 200, asked_at=NOW, answer="A" * per_question
        )
        for n in range(MAX_QUESTIONS)
    ]
    for n in range(MAX_DELIVERY_PROBLEMS + 5):
        delivery_problem(Change(spec=SPEC, state=state, now=NOW, engagement_id="engagement-x"), problem(n))
    size = len(EngagementInput(spec=SPEC, state=state).model_dump_json().encode())
    # Three quarters of the server's limit, the queue of these problems' audit entries included: the
    # rest is for the larger queue a burst may leave (the burst bound continues the run as new early).
    assert size < SERVER_PAYLOAD_LIMIT * 3 // 4, size


def test_removing_and_adding_back_stays_within_the_records() -> None:
    state = state_in(Phase.DELIVERY)
    spec = state.engineers[0].spec
    for _ in range(3):
        decide(SPEC, state, NOW, RemoveEngineer(actor="erin", email=spec.email), "engagement-x")
        decide(SPEC, state, NOW, AddEngineer(actor="erin", engineer=spec), "engagement-x")
    assert len(state.engineers) == len(SPEC.engineers)


def problem(n: int) -> DeliveryProblem:
    return DeliveryProblem(
        message_key=f"m{n}", kind="nda_request", recipient="r@acme.example", event="bounce", reason="R" * 1000, at=NOW
    )


def test_status_keeps_the_newest_delivery_problems_and_each_is_audited() -> None:
    state = state_in(Phase.DELIVERY)
    change = Change(spec=SPEC, state=state, now=NOW, engagement_id="engagement-x")
    for n in range(MAX_DELIVERY_PROBLEMS + 10):
        assert delivery_problem(change, problem(n))
    assert state.delivery_problems[0].message_key == "m10"
    assert len(state.delivery_problems) == MAX_DELIVERY_PROBLEMS
    assert not delivery_problem(change, problem(MAX_DELIVERY_PROBLEMS + 9))  # a duplicate
    audited = [e for e in change.queued if getattr(e, "action", None) == "email_delivery_problem"]
    assert len(audited) == MAX_DELIVERY_PROBLEMS + 10


def test_a_backlog_too_large_to_carry_takes_only_what_ends_access() -> None:
    state = state_in(Phase.DELIVERY)
    new = EngineerSpec(name="One More", email="more@firm.example", role="analyst", jurisdiction="PT")
    add, revoke = AddEngineer(actor="erin", engineer=new), RevokeAccessNow(actor="ciso", reason="breach")
    state.effects = [
        AuditEffect(id=n, at=NOW, actor="a", action="noted", details={"text": "x" * 100})
        for n in range(QUEUE_BEFORE_MEASURING + 50)
    ]
    dry_run(SPEC, state, NOW, add, "engagement-x")  # a long queue that is small to carry: taken
    state.effects = [
        AuditEffect(id=n, at=NOW, actor="a", action="noted", details={"text": "x" * 4000})
        for n in range(CARRIED_BYTES // 4000 + 1)
    ]
    before = state.model_dump_json()
    with pytest.raises(LimitReached, match="side effects waiting"):
        dry_run(SPEC, state, NOW, add, "engagement-x")
    assert state.model_dump_json() == before
    dry_run(SPEC, state, NOW, revoke, "engagement-x")  # a revocation is never held back
    decide(SPEC, state, NOW, revoke, "engagement-x")
    with pytest.raises(LimitReached):  # ... but once everyone is suspended, another one waits
        dry_run(SPEC, state, NOW, revoke, "engagement-x")
