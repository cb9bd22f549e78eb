"""EngagementWorkflow: one client engagement, from contract signature to the final revocation sweep.

Orchestration only. Commands are decided by plain functions (``domain.decisions``) that change the
state and queue side effects; the main loop performs the queue in order, converges the client's IAM
on the least-privilege plan, and moves through the phases on timers. Everything pending lives in the
state, so continue-as-new loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.engagement import EngagementActivities
    from activities.payloads import RecordEngagementInput
    from domain import email_builders
    from domain.commands import (
        Ack,
        AddEngineer,
        AnswerQuestion,
        AskQuestion,
        CancelEngagement,
        CancelSession,
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
    from domain.decisions import lifecycle as rules
    from domain.decisions.change import SYSTEM, Change, Refusal
    from domain.decisions.people import check_completed, check_to_signal, delivery_problem
    from domain.effects import EngagementRecordEffect
    from domain.state import (
        CheckCompleted,
        DeliveryProblem,
        EngagementInput,
        EngagementState,
        EngineerState,
    )
    from domain.views import EngagementSummary, StatusView, status_view, summary
    from domain.vocabulary import CheckStatus, Phase
    from workflows.access import AccessLane
    from workflows.background_check import BackgroundCheckWorkflow
    from workflows.effects import STORAGE, perform
    from workflows.lanes import SideEffectLanes


@workflow.defn(name="EngagementWorkflow")
class EngagementWorkflow:
    @workflow.init
    def __init__(self, input: EngagementInput) -> None:
        self._spec = input.spec
        self._state: EngagementState = input.state or EngagementState(
            contract_signed_at=workflow.now(),
            engineers=[
                EngineerState(spec=e, check=CheckStatus.PENDING if e.production_access else CheckStatus.NOT_REQUIRED)
                for e in input.spec.engineers
            ],
        )
        self._first_run = input.state is None
        self._lanes = workflow.patched("iam-lane")
        """The IAM apart from the side-effect lanes (engagements started since); earlier runs replay as they ran."""
        if self._first_run:
            if self._lanes:
                self._change().queue(EngagementRecordEffect(at=self._state.contract_signed_at))
            self._change().email(email_builders.nda_request(self._spec, self._state))
        self._access = AccessLane(self._spec, self._state, self._change, lanes=self._lanes)
        self._side_effects = SideEffectLanes(self._spec, self._state, self._change)
        self._history_limit = input.continue_as_new_after_events
        self._events = 0
        """Bumped by every handler, so the main loop wakes up to act on it."""
        self._timer_reached: datetime | None = None
        """The latest moment whose timer fired: timed decisions never use an earlier time (``_now``)."""

    # ================================================================ the main loop

    @workflow.run
    async def run(self, input: EngagementInput) -> EngagementSummary:
        if self._first_run and not self._lanes:
            await workflow.execute_activity_method(
                EngagementActivities.record_engagement,
                RecordEngagementInput(engagement_id=self._id, spec=self._spec, at=self._state.contract_signed_at),
                **STORAGE,
            )
        lanes = self._side_effects.start() if self._lanes else []
        steps: dict[Phase, Callable[[], Any]] = {
            Phase.AWAITING_NDA: self._awaiting_nda,
            Phase.ONBOARDING: self._onboarding,
            Phase.DELIVERY: self._delivery,
            Phase.NOTICE: self._notice,
            Phase.TRANSITION: self._transition,
        }
        while self._state.phase in steps:
            await self._perform_effects()
            await steps[self._state.phase]()
            await self._perform_effects()
            if self._state.phase in steps and self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                await self._perform_effects()  # with lanes: the queue itself carries over
                self._state.runs += 1
                workflow.continue_as_new(
                    EngagementInput(
                        spec=self._spec, state=self._state, continue_as_new_after_events=self._history_limit
                    )
                )
        if self._state.phase is Phase.CANCELLED:
            await self._access.wind_down(actor=SYSTEM, reason="engagement cancelled")
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._perform_effects()
        if lanes:  # the closing report and the last records are out (or dropped by an operator)
            await workflow.wait_condition(lambda: self._side_effects.drained() and workflow.all_handlers_finished())
        return summary(self._spec, self._state)

    @property
    def _id(self) -> str:
        return workflow.info().workflow_id

    def _change(self) -> Change:
        return Change(
            spec=self._spec, state=self._state, now=workflow.now(), engagement_id=self._id, strict=self._lanes
        )

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        if info.is_continue_as_new_suggested():
            return True
        return self._history_limit is not None and info.get_current_history_length() >= self._history_limit

    def _now(self) -> datetime:
        """The time a timed decision is made on: the task's clock, never before a fired timer's moment.

        A fired timer is a fact of the history; the clock of the task that delivers it is not the same
        fact. A worker that took over a task retried after a crash once delivered a fire with the clock
        of the task before, decided "not due yet" and slept again where every replay sends the reminder,
        and the history stopped replaying (tests/test_stale_clock.py). With a consistent clock the clock
        is already past the moment, so this changes no decision of any saved history.
        """
        now = workflow.now()
        reached = self._timer_reached
        return reached if reached is not None and reached > now else now

    async def _sleep_until(self, moment: datetime | None) -> None:
        """Wait until the moment passes or a handler changes something, whichever comes first."""
        seen = self._events
        timeout = None
        if moment is not None:
            timeout = (moment - self._now()).total_seconds()
            if timeout <= 0:
                return
        try:
            await workflow.wait_condition(
                lambda: self._events != seen or (bool(self._state.effects) and not self._lanes), timeout=timeout
            )
        except TimeoutError:
            assert moment is not None  # only a wait with a timeout times out
            self._timer_reached = moment

    async def _perform_effects(self) -> None:
        """Without lanes, the main loop performs queued effects in order, each until it is done."""
        state = self._state
        while state.effects and not self._lanes:
            await perform(self._id, state, self._spec, state.effects[0])
            state.effects.pop(0)

    # ================================================================ phases

    async def _awaiting_nda(self) -> None:
        state, spec = self._state, self._spec
        if state.emergency is not None:
            await self._access.converge()
        deadline = rules.nda_deadline(spec, state)
        next_reminder = rules.next_nda_reminder(spec, state)
        await self._sleep_until(min(deadline, next_reminder))
        if state.phase is not Phase.AWAITING_NDA:
            return
        now = self._now()
        if now >= deadline:
            rules.nda_overdue(self._change())
        elif now >= next_reminder:
            rules.remind_nda(self._change())

    async def _onboarding(self) -> None:
        await self._access.converge()
        if self._state.phase is not Phase.ONBOARDING:
            return
        if rules.onboarding_waits(self._state):
            await self._sleep_until(None)
            return
        rules.onboarded(self._change())

    async def _delivery(self) -> None:
        await self._access.converge()
        state = self._state
        if state.phase is not Phase.DELIVERY:
            return
        if rules.review_due(state, self._now()):
            await self._access.review()
            return
        await self._sleep_until(state.next_access_review_at)

    async def _notice(self) -> None:
        await self._access.converge()
        state = self._state
        if state.phase is not Phase.NOTICE:
            return
        assert state.end_date is not None
        now = self._now()
        if now >= state.end_date:
            await self._end_date()
            return
        remind_at = state.end_date - self._spec.handover_reminder_lead
        if rules.handover_reminder_due(self._spec, state, now):
            rules.remind_handover(self._change())
            return
        await self._sleep_until(remind_at if now < remind_at else state.end_date)

    async def _end_date(self) -> None:
        """The agreed end: every grant of every engineer revoked at once, and proven by read-back."""
        rules.end_date_reached(self._change())
        readbacks = await self._access.wind_down(actor=SYSTEM, reason="end date")
        rules.access_ended(self._change(), readbacks)

    async def _transition(self) -> None:
        state = self._state
        assert state.transition_ends_at is not None
        if self._now() < state.transition_ends_at:
            if workflow.patched("transition-closing-notice"):
                await self._access.converge()  # an emergency revocation is confirmed and reported here too
                closing_at = state.transition_ends_at - self._spec.transition_closing_notice
                if not state.transition_closing_sent:
                    if self._now() >= closing_at:
                        rules.close_transition_notice(self._change())
                        return
                    await self._sleep_until(closing_at)
                    return
            await self._sleep_until(state.transition_ends_at)
            return
        # The final sweep: read every identity back once more, and prove nothing remains.
        readbacks = await self._access.wind_down(actor=SYSTEM, reason="final revocation sweep")
        remaining = [r for r in readbacks if r.groups or r.identity_active]
        if remaining:
            raise ApplicationError(f"final sweep found access left: {remaining}", non_retryable=False)
        rules.closed(self._change(), readbacks)

    # ================================================================ commands

    def _validate(self, command: Command) -> None:
        """Decide the command on a copy of the state: a refusal goes back to the sender, nothing changes."""
        try:
            # Today's rules refuse for every run: refusing more leaves no trace a replay could miss.
            dry_run(self._spec, self._state, workflow.now(), command, self._id, strict=True)
        except Refusal as refusal:
            raise ApplicationError(refusal.message, type=refusal.type) from None

    def _decide(self, command: Command) -> Ack:
        try:
            decision = decide(self._spec, self._state, workflow.now(), command, self._id, strict=self._lanes)
        except Refusal as refusal:  # only on replay of a history its validator never saw
            raise ApplicationError(refusal.message, type=refusal.type) from None
        self._events += 1
        return decision.ack

    @workflow.update(name="record_nda_signed")
    def record_nda_signed(self, command: RecordNdaSigned) -> Ack:
        return self._decide(command)

    @record_nda_signed.validator
    def _validate_nda(self, command: RecordNdaSigned) -> None:
        self._validate(command)

    @workflow.update(name="add_engineer")
    def add_engineer(self, command: AddEngineer) -> Ack:
        return self._decide(command)

    @add_engineer.validator
    def _validate_add(self, command: AddEngineer) -> None:
        self._validate(command)

    @workflow.update(name="remove_engineer")
    def remove_engineer(self, command: RemoveEngineer) -> Ack:
        return self._decide(command)

    @remove_engineer.validator
    def _validate_remove(self, command: RemoveEngineer) -> None:
        self._validate(command)

    @workflow.update(name="change_role")
    def change_role(self, command: ChangeRole) -> Ack:
        return self._decide(command)

    @change_role.validator
    def _validate_change_role(self, command: ChangeRole) -> None:
        self._validate(command)

    @workflow.update(name="record_check_result")
    async def record_check_result(self, command: RecordCheckResult) -> Ack:
        child_id = check_to_signal(self._change(), command)
        ack = decide(self._spec, self._state, workflow.now(), command, self._id, strict=self._lanes).ack
        await workflow.get_external_workflow_handle(child_id).signal(BackgroundCheckWorkflow.record_result, command)
        self._events += 1
        return ack

    @record_check_result.validator
    def _validate_check_result(self, command: RecordCheckResult) -> None:
        self._validate(command)

    @workflow.update(name="give_notice")
    def give_notice(self, command: GiveNotice) -> Ack:
        return self._decide(command)

    @give_notice.validator
    def _validate_notice(self, command: GiveNotice) -> None:
        self._validate(command)

    @workflow.update(name="move_end_date")
    def move_end_date(self, command: MoveEndDate) -> Ack:
        return self._decide(command)

    @move_end_date.validator
    def _validate_move(self, command: MoveEndDate) -> None:
        self._validate(command)

    @workflow.update(name="record_document")
    def record_document(self, command: RecordDocument) -> Ack:
        return self._decide(command)

    @record_document.validator
    def _validate_document(self, command: RecordDocument) -> None:
        self._validate(command)

    @workflow.update(name="schedule_session")
    def schedule_session(self, command: ScheduleSession) -> Ack:
        return self._decide(command)

    @schedule_session.validator
    def _validate_schedule(self, command: ScheduleSession) -> None:
        self._validate(command)

    @workflow.update(name="record_session_held")
    def record_session_held(self, command: RecordSessionHeld) -> Ack:
        return self._decide(command)

    @record_session_held.validator
    def _validate_held(self, command: RecordSessionHeld) -> None:
        self._validate(command)

    @workflow.update(name="ask_question")
    def ask_question(self, command: AskQuestion) -> Ack:
        return self._decide(command)

    @ask_question.validator
    def _validate_ask(self, command: AskQuestion) -> None:
        self._validate(command)

    @workflow.update(name="answer_question")
    def answer_question(self, command: AnswerQuestion) -> Ack:
        return self._decide(command)

    @answer_question.validator
    def _validate_answer(self, command: AnswerQuestion) -> None:
        self._validate(command)

    @workflow.update(name="request_access_review")
    def request_access_review(self, command: RequestAccessReview) -> Ack:
        return self._decide(command)

    @request_access_review.validator
    def _validate_review(self, command: RequestAccessReview) -> None:
        self._validate(command)

    @workflow.update(name="cancel_engagement")
    def cancel_engagement(self, command: CancelEngagement) -> Ack:
        return self._decide(command)

    @cancel_engagement.validator
    def _validate_cancel(self, command: CancelEngagement) -> None:
        self._validate(command)

    @workflow.update(name="revoke_access_now")
    def revoke_access_now(self, command: RevokeAccessNow) -> Ack:
        """The emergency brake: revoke now, in any running phase, one engineer or everyone."""
        return self._decide(command)

    @revoke_access_now.validator
    def _validate_revoke_now(self, command: RevokeAccessNow) -> None:
        self._validate(command)

    @workflow.update(name="restore_access")
    def restore_access(self, command: RestoreAccess) -> Ack:
        return self._decide(command)

    @restore_access.validator
    def _validate_restore(self, command: RestoreAccess) -> None:
        self._validate(command)

    @workflow.update(name="reschedule_session")
    def reschedule_session(self, command: RescheduleSession) -> Ack:
        return self._decide(command)

    @reschedule_session.validator
    def _validate_reschedule(self, command: RescheduleSession) -> None:
        self._validate(command)

    @workflow.update(name="cancel_session")
    def cancel_session(self, command: CancelSession) -> Ack:
        return self._decide(command)

    @cancel_session.validator
    def _validate_cancel_session(self, command: CancelSession) -> None:
        self._validate(command)

    @workflow.update(name="retry_parked_effect")
    def retry_parked_effect(self, command: RetryParkedEffect) -> Ack:
        return self._decide(command)

    @retry_parked_effect.validator
    def _validate_retry_parked(self, command: RetryParkedEffect) -> None:
        self._validate(command)

    @workflow.update(name="drop_parked_effect")
    def drop_parked_effect(self, command: DropParkedEffect) -> Ack:
        return self._decide(command)

    @drop_parked_effect.validator
    def _validate_drop_parked(self, command: DropParkedEffect) -> None:
        self._validate(command)

    # ================================================================ facts reported by signal

    @workflow.signal(name="background_check_completed")
    def background_check_completed(self, result: CheckCompleted) -> None:
        outcome = check_completed(self._change(), result)
        if outcome == "stale":
            workflow.logger.warning("ignoring a result from a check that is no longer current: %s", result)
        elif outcome == "recorded":
            self._events += 1

    @workflow.signal(name="email_delivery_problem")
    def email_delivery_problem(self, problem: DeliveryProblem) -> None:
        """SendGrid says an email will not arrive: show it in status (duplicates are ignored)."""
        if delivery_problem(self._change(), problem):
            self._events += 1

    # ================================================================ the status query

    @workflow.query(name="status")
    def status(self) -> StatusView:
        return status_view(self._spec, self._state)
