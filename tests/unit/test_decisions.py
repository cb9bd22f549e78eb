"""The unit tier: every command decided in every phase, in milliseconds, with no server.

A command legal in the phase is accepted or refused with a typed refusal; one illegal in the phase
is refused as such; and whatever a manager sends, the decision raises nothing but a typed refusal,
and a refused command leaves the state exactly as it was.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.commands import (
    AddEngineer,
    AnswerQuestion,
    AskQuestion,
    CancelEngagement,
    CancelSession,
    CertifyAccess,
    ChangeRole,
    Command,
    DropParkedEffect,
    GiveNotice,
    MoveEndDate,
    RecordCheckResult,
    RecordDocument,
    RecordNdaSigned,
    RecordSessionHeld,
    RemoveEngineer,
    RequestAccessReview,
    RescheduleSession,
    RestoreAccess,
    RetryParkedEffect,
    RevokeAccessNow,
    ScheduleSession,
)
from domain.decisions import decide, dry_run
from domain.decisions.change import IllegalInPhase, InvalidDate, Refusal, UnknownEffect
from domain.effects import AuditEffect, EmailEffect, ParkedEffect, PhaseEffect
from domain.email_kinds import EmailKind
from domain.phases import COMMANDS, RULES
from domain.spec import EngagementSpec, EngineerSpec, parse_spec
from domain.state import (
    Certification,
    CertificationEntry,
    EngagementState,
    EngineerState,
    HandoverSession,
    Question,
)
from domain.views import status_view
from domain.vocabulary import CheckStatus, KnowledgeTransferDocument, Phase
from tests.sample_spec import spec_data

NOW = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
SPEC: EngagementSpec = parse_spec(spec_data())
ALICE, BOB, CAROL = "alice@firm.example", "bob@firm.example", "carol@firm.example"
DAVE = EngineerSpec(name="Dave New", email="dave@firm.example", role="analyst", jurisdiction="PT")


def state_in(phase: Phase) -> EngagementState:
    """An engagement in the phase, with what that phase typically holds (checks, sessions, questions)."""
    signed = NOW - timedelta(days=200)
    engineers = [
        EngineerState(spec=e, check=CheckStatus.IN_PROGRESS if e.production_access else CheckStatus.NOT_REQUIRED)
        for e in SPEC.engineers
    ]
    for e in engineers:
        e.check_workflow_id = f"engagement-x/check/{e.email}" if e.check is CheckStatus.IN_PROGRESS else None
    state = EngagementState(phase=phase, contract_signed_at=signed, engineers=engineers)
    if phase not in (Phase.AWAITING_NDA, Phase.CANCELLED):
        state.nda_signed_at = signed + timedelta(days=1)
    if phase in (Phase.NOTICE, Phase.TRANSITION, Phase.CLOSED):
        state.end_date = NOW + (timedelta(days=30) if phase is Phase.NOTICE else -timedelta(days=3))
        state.transition_ends_at = state.end_date + SPEC.transition_window
        state.sessions = [
            HandoverSession(
                session_id="s1", title="Walkthrough", starts_at=NOW + timedelta(days=2), duration=timedelta(hours=1)
            )
        ]
    if phase in (Phase.DELIVERY, Phase.NOTICE):  # a certification round waits for the IAM owner
        state.certification_rounds = 1
        state.certification = Certification(
            round=1,
            opened_at=NOW - timedelta(days=1),
            due_at=NOW + timedelta(days=13),
            engineers=[
                CertificationEntry(email=e.email, name=e.spec.name, role=e.spec.role, groups=[]) for e in engineers
            ],
        )
    if phase is Phase.TRANSITION:
        state.questions = [Question(question_id="q1", text="Where?", asked_by="c", asked_at=NOW - timedelta(days=1))]
    return state


def sample_command(command: type[Command]) -> Command:
    """A well-formed command of each kind, as a manager would send it."""
    later = NOW + timedelta(days=5)
    samples: dict[type[Command], Command] = {
        RecordNdaSigned: RecordNdaSigned(actor="ops", signed_by="Sam"),
        AddEngineer: AddEngineer(actor="erin", engineer=DAVE),
        RemoveEngineer: RemoveEngineer(actor="erin", email=CAROL),
        ChangeRole: ChangeRole(actor="erin", email=CAROL, role="developer"),
        RecordCheckResult: RecordCheckResult(actor="hr", email=ALICE, outcome="cleared"),
        GiveNotice: GiveNotice(actor="erin", given_by="client"),
        MoveEndDate: MoveEndDate(actor="erin", end_date=NOW + timedelta(days=40)),
        RecordDocument: RecordDocument(
            actor="fran", document=KnowledgeTransferDocument.SYSTEM_RUNBOOKS, location="https://wiki.example/rb"
        ),
        ScheduleSession: ScheduleSession(actor="fran", session_id="s2", title="Ops", starts_at=later),
        RescheduleSession: RescheduleSession(actor="fran", session_id="s1", starts_at=later),
        CancelSession: CancelSession(actor="fran", session_id="s1", reason="merged"),
        RecordSessionHeld: RecordSessionHeld(actor="fran", session_id="s1"),
        AskQuestion: AskQuestion(actor="lee", question_id="q2", text="How?"),
        AnswerQuestion: AnswerQuestion(actor="fran", question_id="q1", answer="Here."),
        RequestAccessReview: RequestAccessReview(actor="ian"),
        CertifyAccess: CertifyAccess(actor="ian", round=1, email=CAROL, decision="revoke"),
        RevokeAccessNow: RevokeAccessNow(actor="ciso", reason="breach"),
        RestoreAccess: RestoreAccess(actor="ciso"),
        CancelEngagement: CancelEngagement(actor="erin", reason="withdrawn"),
        RetryParkedEffect: RetryParkedEffect(actor="ops", reason="provider back"),
        DropParkedEffect: DropParkedEffect(actor="ops", effect_id=1, reason="sent by hand"),
    }
    return samples[command]


@pytest.mark.parametrize("phase", list(Phase), ids=lambda p: p.value)
@pytest.mark.parametrize("rule", COMMANDS, ids=lambda r: r.update)
def test_every_command_in_every_phase_follows_the_table(rule: Any, phase: Phase) -> None:
    state = state_in(phase)
    before = state.model_dump()
    command = sample_command(rule.command)
    if phase not in rule.phases:
        with pytest.raises(IllegalInPhase, match=f"not allowed in phase {phase.value}"):
            dry_run(SPEC, state, NOW, command, "engagement-x")
        assert state.model_dump() == before
        return
    try:
        decision = decide(SPEC, state, NOW, command, "engagement-x")
    except Refusal as refusal:  # legal here, but this engagement's facts refuse it (e.g. nothing suspended)
        assert not isinstance(refusal, IllegalInPhase)
        assert refusal.message
        return
    assert decision.ack.accepted
    assert decision.effects == state.effects[-len(decision.effects) :] if decision.effects else True


def test_the_phase_table_covers_every_command_model_once() -> None:
    assert len(RULES) == len(COMMANDS) == 21
    assert len({r.update for r in COMMANDS}) == len({r.cli for r in COMMANDS}) == 21


def test_notice_sets_the_end_date_and_queues_its_audit_email_and_phase_in_order() -> None:
    state = state_in(Phase.DELIVERY)
    decision = decide(SPEC, state, NOW, GiveNotice(actor="erin", given_by="client"), "engagement-x")
    assert state.end_date == NOW + SPEC.notice_period
    assert state.transition_ends_at == state.end_date + SPEC.transition_window
    assert [type(e) for e in decision.effects] == [AuditEffect, EmailEffect, PhaseEffect]
    email = decision.effects[1]
    assert isinstance(email, EmailEffect) and email.kind is EmailKind.NOTICE_RECEIVED
    assert email.facts["end_date"] == state.end_date.isoformat()
    assert decision.ack.phase is Phase.NOTICE


def test_emergency_revocation_of_everyone_suspends_all_and_names_them() -> None:
    state = state_in(Phase.DELIVERY)
    decide(SPEC, state, NOW, RevokeAccessNow(actor="ciso", reason="breach"), "engagement-x")
    assert state.access_suspended
    assert state.emergency is not None and state.emergency.emails == sorted([ALICE, BOB, CAROL])
    restore = decide(SPEC, state, NOW, RestoreAccess(actor="ciso"), "engagement-x")
    assert not state.access_suspended and restore.ack.accepted == "access restored to the policy"


def test_one_engineer_revoked_in_an_emergency_shows_why_until_restored() -> None:
    state = state_in(Phase.DELIVERY)
    decide(SPEC, state, NOW, RevokeAccessNow(actor="ciso", email=ALICE, reason="laptop lost"), "engagement-x")
    [shown] = [e for e in status_view(SPEC, state).engineers if e.email == ALICE]
    assert shown.suspended and shown.suspended_for == "emergency"
    decide(SPEC, state, NOW, RestoreAccess(actor="ciso", email=ALICE), "engagement-x")
    [shown] = [e for e in status_view(SPEC, state).engineers if e.email == ALICE]
    assert not shown.suspended and shown.suspended_for is None


def test_a_recorded_check_result_waits_for_the_check_to_report_back() -> None:
    state = state_in(Phase.ONBOARDING)
    decide(SPEC, state, NOW, RecordCheckResult(actor="hr", email=ALICE, outcome="failed"), "engagement-x")
    alice = state.engineer(ALICE)
    assert alice is not None and alice.check_result_sent and alice.check is CheckStatus.IN_PROGRESS


# ---------------------------------------------------------------- whatever a manager sends

TEXT = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9 .,:/'-]{0,29}\Z")  # what the command models accept
NAME = st.from_regex(r"\A[A-Za-z][A-Za-z .'-]{0,29}\Z")  # a person's name (domain.bounds.PersonName)
MOMENTS = st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2199, 12, 30), timezones=st.just(UTC))
EMAILS = st.sampled_from([ALICE, BOB, CAROL, "dave@firm.example", "nobody@elsewhere.example"])
IDS = st.sampled_from(["s1", "s2", "q1", "q2", "x"])
DURATIONS = st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(hours=12))

COMMAND_STRATEGIES: list[st.SearchStrategy[Command]] = [
    st.builds(RecordNdaSigned, actor=TEXT, signed_by=NAME),
    st.builds(
        AddEngineer,
        actor=TEXT,
        engineer=st.builds(
            EngineerSpec,
            name=NAME,
            email=EMAILS,
            role=st.sampled_from(["developer", "sre", "analyst", "ghost"]),
            production_access=st.booleans(),
            jurisdiction=st.sampled_from(["PT", "DE", "US"]),
        ),
    ),
    st.builds(RemoveEngineer, actor=TEXT, email=EMAILS),
    st.builds(
        ChangeRole,
        actor=TEXT,
        email=EMAILS,
        role=st.sampled_from(["developer", "sre", "analyst", "ghost"]),
        production_access=st.none() | st.booleans(),
    ),
    st.builds(RecordCheckResult, actor=TEXT, email=EMAILS, outcome=st.sampled_from(["cleared", "failed"])),
    st.builds(GiveNotice, actor=TEXT, given_by=st.sampled_from(["client", "firm"])),
    st.builds(MoveEndDate, actor=TEXT, end_date=MOMENTS),
    st.builds(RecordDocument, actor=TEXT, document=st.sampled_from(list(KnowledgeTransferDocument)), location=TEXT),
    st.builds(ScheduleSession, actor=TEXT, session_id=IDS, title=TEXT, starts_at=MOMENTS, duration=DURATIONS),
    st.builds(RescheduleSession, actor=TEXT, session_id=IDS, starts_at=MOMENTS, duration=st.none() | DURATIONS),
    st.builds(CancelSession, actor=TEXT, session_id=IDS),
    st.builds(RecordSessionHeld, actor=TEXT, session_id=IDS),
    st.builds(AskQuestion, actor=TEXT, question_id=IDS, text=TEXT),
    st.builds(AnswerQuestion, actor=TEXT, question_id=IDS, answer=TEXT),
    st.builds(RequestAccessReview, actor=TEXT),
    st.builds(
        CertifyAccess,
        actor=TEXT,
        round=st.integers(1, 3),
        email=EMAILS,
        decision=st.sampled_from(["keep", "revoke"]),
    ),
    st.builds(RevokeAccessNow, actor=TEXT, email=st.none() | EMAILS, reason=TEXT),
    st.builds(RestoreAccess, actor=TEXT, email=st.none() | EMAILS),
    st.builds(CancelEngagement, actor=TEXT, reason=TEXT),
    st.builds(RetryParkedEffect, actor=TEXT, effect_id=st.none() | st.integers(1, 5), reason=TEXT),
    st.builds(DropParkedEffect, actor=TEXT, effect_id=st.integers(1, 5), reason=TEXT),
]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    phase=st.sampled_from(list(Phase)),
    commands=st.lists(st.one_of(COMMAND_STRATEGIES), min_size=1, max_size=6),
)
def test_no_command_in_any_phase_raises_anything_but_a_typed_refusal(phase: Phase, commands: list[Command]) -> None:
    state = state_in(phase)
    for command in commands:
        before = state.model_dump()
        try:
            dry_run(SPEC, state, NOW, command, "engagement-x")
        except Refusal as refusal:
            assert type(refusal) is not Refusal and refusal.message  # a typed refusal with a reason
            assert state.model_dump() == before  # a refused command changes nothing
            continue
        decide(SPEC, state, NOW, command, "engagement-x")  # what the dry run accepted, the decision applies


# ---------------------------------------------------------------- the rules of sessions, checks and parked effects


def test_a_session_must_end_before_the_end_date_and_cannot_be_held_before_it_starts() -> None:
    state = state_in(Phase.NOTICE)
    assert state.end_date is not None
    late = ScheduleSession(actor="f", session_id="late", title="Late", starts_at=state.end_date - timedelta(minutes=30))
    with pytest.raises(InvalidDate, match="must end before the end date"):
        dry_run(SPEC, state, NOW, late, "engagement-x")
    with pytest.raises(InvalidDate, match="has not started yet"):
        dry_run(SPEC, state, NOW, RecordSessionHeld(actor="f", session_id="s1"), "engagement-x")
    decide(SPEC, state, NOW + timedelta(days=3), RecordSessionHeld(actor="f", session_id="s1"), "engagement-x")
    assert state.sessions[0].status == "held"


def test_moving_the_end_date_before_a_session_cancels_it_with_a_cancellation_invite() -> None:
    state = state_in(Phase.NOTICE)
    moved = NOW + timedelta(days=1)  # before session s1 (NOW + 2 days)
    decision = decide(SPEC, state, NOW, MoveEndDate(actor="erin", end_date=moved), "engagement-x")
    assert state.sessions[0].status == "cancelled" and state.sessions[0].sequence == 1
    kinds = [e.kind for e in decision.effects if isinstance(e, EmailEffect)]
    assert kinds == [EmailKind.END_DATE_MOVED, EmailKind.SESSION_CANCELLED]


def test_removing_an_engineer_closes_their_running_check() -> None:
    state = state_in(Phase.ONBOARDING)
    alice = state.engineer(ALICE)
    assert alice is not None and alice.check_workflow_id
    decide(SPEC, state, NOW, RemoveEngineer(actor="erin", email=ALICE), "engagement-x")
    assert alice.check is CheckStatus.CANCELLED and state.checks_to_cancel == [alice.check_workflow_id]


def test_earlier_engagements_keep_the_rules_they_were_decided_by() -> None:
    state = state_in(Phase.ONBOARDING)
    decide(SPEC, state, NOW, RemoveEngineer(actor="erin", email=ALICE), "engagement-x", strict=False)
    assert state.checks_to_cancel == [] and state.engineer(ALICE).check is CheckStatus.IN_PROGRESS  # type: ignore[union-attr]


def test_a_parked_effect_is_retried_or_dropped_by_an_operator_with_an_audit_entry() -> None:
    state = state_in(Phase.DELIVERY)
    email = EmailEffect(id=7, kind=EmailKind.ACCESS_REVIEW, step="x", occurrence=1, recipients=[], facts={})
    state.parked = [ParkedEffect(effect=email, parked_at=NOW, last_error="HTTP 500", retry_at=NOW + timedelta(hours=1))]
    with pytest.raises(UnknownEffect, match="no parked effect 8"):
        dry_run(SPEC, state, NOW, DropParkedEffect(actor="ops", effect_id=8, reason="x"), "engagement-x")
    decision = decide(SPEC, state, NOW, RetryParkedEffect(actor="ops", effect_id=7, reason="back"), "engagement-x")
    assert state.parked == [] and state.effects[0] is email
    audit = decision.effects[-1]
    assert isinstance(audit, AuditEffect) and audit.action == "parked_effect_retried" and audit.actor == "ops"
