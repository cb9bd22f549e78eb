"""EngagementWorkflow: one client engagement, from contract signature to the final revocation sweep.

Orchestration only. Commands are decided by plain functions (``domain.decisions``) that change the
state and queue side effects; the main loop performs the queue in order, converges the client's IAM
on the least-privilege plan, and moves through the phases on timers. Everything pending lives in the
state, so continue-as-new loses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.engagement import EngagementActivities
    from activities.payloads import RecordEngagementInput
    from adapters import search_attributes as sa
    from domain import email_builders
    from domain.commands import (
        Ack,
        Command,
        RecordCheckResult,
    )
    from domain.decisions import certification as certification_rules
    from domain.decisions import decide, dry_run, refuse_in_a_full_run
    from domain.decisions import lifecycle as rules
    from domain.decisions.change import SYSTEM, Change, Refusal
    from domain.decisions.people import check_completed, check_to_signal, delivery_problem
    from domain.effects import EngagementRecordEffect
    from domain.phases import RUNNING
    from domain.state import (
        CheckCompleted,
        DeliveryProblem,
        EngagementInput,
        EngagementState,
        EngineerState,
    )
    from domain.views import (
        CertificationView,
        EngagementSummary,
        StatusView,
        certification_view,
        status_view,
        summary,
    )
    from domain.vocabulary import CheckStatus, Phase
    from workflows.access import AccessLane
    from workflows.admin_view import AdminView
    from workflows.background_check import BackgroundCheckWorkflow
    from workflows.effects import STORAGE, perform
    from workflows.handlers import EngagementCommands
    from workflows.lanes import SideEffectLanes


@workflow.defn(name="EngagementWorkflow")
class EngagementWorkflow(EngagementCommands):
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
        self._certifying = workflow.patched("certification")
        """Access certification rounds after each review (engagements started since, with a spec that asks)."""
        self._burst_bound = self._lanes and workflow.patched("burst-bound")
        """Runs with lanes since: the bound is held between side effects too (``_full``), not only between
        steps of the main loop, so no burst of commands makes a run longer than the bound and a little."""
        if self._first_run:
            if self._lanes:
                self._change().queue(EngagementRecordEffect(at=self._state.contract_signed_at))
            self._change().email(email_builders.nda_request(self._spec, self._state))
        self._access = AccessLane(
            self._spec, self._state, self._change, lanes=self._lanes, full=self._full if self._burst_bound else None
        )
        self._side_effects = SideEffectLanes(
            self._spec,
            self._state,
            self._change,
            shown=self._show,
            full=self._full if self._burst_bound else None,
            batch=self._burst_bound and workflow.patched("batched-records"),
            resting=lambda: self._admin_view.publish_status(),
        )
        publish = self._lanes and workflow.info().typed_search_attributes.get(sa.ENGAGEMENT_PHASE) is not None
        memo = self._lanes and workflow.patched("status-memo")  # runs since: `status` reads it, no replay
        self._admin_view = AdminView(self._spec, self._state, publish=publish, status_memo=memo, full=self._full)
        self._lane_tasks: list[asyncio.Task[None]] = []
        self._history_limit = input.continue_as_new_after_events
        self._events = 0
        """Bumped by every handler, so the main loop wakes up to act on it."""
        self._events_at_converge = 0
        """``_events`` when the IAM lane's last pass began: a revocation taken since is not in it yet."""
        self._continuing = False
        """``burst-bound`` runs: the main loop found the run full and is on its way to continue as new.
        Validators refuse by this (or by a full history while an IAM pass is in flight, whose end
        brings the next workflow task), never by the history length alone: an update's own
        (speculative) workflow task lengthens the history it sees, and an idle run left just under
        the bound would refuse every command in a task that, refused, is never recorded, and so would
        never continue as new."""
        self._converging = False
        """An IAM pass is in flight (its activities' end brings a workflow task)."""
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
        lanes = self._lane_tasks = self._side_effects.start() if self._lanes else []
        steps: dict[Phase, Callable[[], Any]] = {
            Phase.AWAITING_NDA: self._awaiting_nda,
            Phase.ONBOARDING: self._onboarding,
            Phase.DELIVERY: self._delivery,
            Phase.NOTICE: self._notice,
            Phase.TRANSITION: self._transition,
        }
        while self._state.phase in steps:
            self._show()
            await self._perform_effects()
            await steps[self._state.phase]()
            await self._perform_effects()
            if self._state.phase in steps and self._should_continue_as_new():
                self._continuing = self._burst_bound
                if self._burst_bound and not await self._ready_to_continue_as_new():
                    continue  # a revocation or the end date came first: the step performs it, then this again
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
        self._show()
        if lanes:  # the closing report and the last records are out (or dropped by an operator)
            await workflow.wait_condition(lambda: self._side_effects.drained() and workflow.all_handlers_finished())
        self._admin_view.publish_status()
        return summary(self._spec, self._state)

    @property
    def _id(self) -> str:
        return workflow.info().workflow_id

    def _change(self) -> Change:
        return Change(
            spec=self._spec, state=self._state, now=workflow.now(), engagement_id=self._id, strict=self._lanes
        )

    def _show(self) -> None:
        """The engagement as admins find it: the UI's current details, and the search attributes."""
        for lane in self._lane_tasks:  # a lane never ends: if one did, its error fails this task, visibly
            if lane.done():
                lane.result()
        self._admin_view.show()

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        if info.is_continue_as_new_suggested():
            return True
        return self._history_limit is not None and info.get_current_history_length() >= self._history_limit

    def _full(self) -> bool:
        """``burst-bound`` runs: the run is to continue as new; until it does, the side-effect lanes start
        nothing and let go of what is in flight, and the IAM lane only takes access away (once the main
        loop is on its way, ``_continuing``, only commands that end access are taken). A run that is
        closing (closed, cancelled) is never full: it drains its queue and completes."""
        return self._burst_bound and self._state.phase in RUNNING and self._should_continue_as_new()

    async def _ready_to_continue_as_new(self) -> bool:
        """The run is full: wait until the lanes have let go of what was in flight (cancelled, waited
        out) and no handler is running. Meanwhile a command taken since the last IAM pass began that
        takes access away (a revocation) is performed at once, and at the end date this returns False
        for the step to revoke everyone: neither waits for the lanes."""
        state = self._state

        def iam_waits() -> bool:
            return self._events != self._events_at_converge and self._access.revocation_waits()

        while True:
            end = state.end_date if state.phase is Phase.NOTICE else None
            timeout = None if end is None else (end - self._now()).total_seconds()
            if timeout is not None and timeout <= 0:
                return False
            try:
                await workflow.wait_condition(
                    lambda: (self._side_effects.let_go() and workflow.all_handlers_finished()) or iam_waits(),
                    timeout=timeout,
                    timeout_summary="end date" if timeout is not None else None,
                )
            except TimeoutError:
                assert end is not None
                self._timer_reached = end
                return False
            if not iam_waits():
                return True
            await self._converge()

    async def _converge(self) -> None:
        """One pass of the IAM lane over the engagement (``_events_at_converge``: what it started from)."""
        self._events_at_converge = self._events
        self._converging = True
        try:
            await self._access.converge()
        finally:
            self._converging = False

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

    def _converge_again(self) -> bool:
        """With lanes: a command decided while the IAM lane was busy needs another pass, not a sleep."""
        return self._lanes and not self._access.idle()

    async def _sleep_until(self, moment: datetime | None, label: str | None = None) -> None:
        """Wait until the moment passes or a handler changes something, whichever comes first."""
        seen = self._events
        timeout = None
        if self._full():  # the run continues as new first
            return
        if moment is not None:
            timeout = (moment - self._now()).total_seconds()
            if timeout <= 0:
                return
        self._admin_view.publish_status()  # status-memo runs: the view as the engagement goes to sleep
        try:
            await workflow.wait_condition(
                lambda: (
                    self._events != seen
                    or (bool(self._state.effects) and not self._lanes)
                    or any(lane.done() for lane in self._lane_tasks)
                    or self._full()
                ),
                timeout=timeout,
                timeout_summary=label if self._lanes and timeout is not None else None,
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
            await self._converge()
        deadline = rules.nda_deadline(spec, state)
        next_reminder = rules.next_nda_reminder(spec, state)
        label = "NDA deadline" if deadline <= next_reminder else "NDA reminder"
        await self._sleep_until(min(deadline, next_reminder), label)
        if state.phase is not Phase.AWAITING_NDA:
            return
        now = self._now()
        if now >= deadline:
            rules.nda_overdue(self._change())
        elif now >= next_reminder:
            rules.remind_nda(self._change())

    async def _onboarding(self) -> None:
        await self._converge()
        if self._state.phase is not Phase.ONBOARDING:
            return
        if rules.onboarding_waits(self._state):
            if self._converge_again():
                return
            await self._sleep_until(None)
            return
        rules.onboarded(self._change())

    async def _delivery(self) -> None:
        await self._converge()
        state = self._state
        if state.phase is not Phase.DELIVERY:
            return
        if self._certification_default_due():
            return
        if rules.review_due(state, self._now()) and not self._full():  # a full run leaves it to the next
            await self._access.review()
            if self._certifying:
                certification_rules.open_round(self._change())
            return
        if self._converge_again():
            return
        await self._sleep_until(*self._or_certification_due(state.next_access_review_at, "access review"))

    def _certification_default_due(self) -> bool:
        """The open certification round's due date passed: the spec's rule decides for the undecided."""
        if self._certifying and certification_rules.due(self._state, self._now()):
            certification_rules.apply_default(self._change())
            self._events += 1
            return True
        return False

    def _or_certification_due(self, moment: datetime | None, label: str) -> tuple[datetime | None, str]:
        return certification_rules.or_due(self._state, moment, label) if self._certifying else (moment, label)

    async def _notice(self) -> None:
        await self._converge()
        state = self._state
        if state.phase is not Phase.NOTICE:
            return
        assert state.end_date is not None
        now = self._now()
        if now >= state.end_date:
            await self._end_date()
            return
        if self._certification_default_due():
            return
        remind_at = state.end_date - self._spec.handover_reminder_lead
        if rules.handover_reminder_due(self._spec, state, now):
            rules.remind_handover(self._change())
            return
        if self._converge_again():
            return
        await self._sleep_until(
            *self._or_certification_due(
                *((remind_at, "handover reminder") if now < remind_at else (state.end_date, "end date"))
            )
        )

    async def _end_date(self) -> None:
        """The agreed end: every grant of every engineer revoked at once, and proven by read-back."""
        rules.end_date_reached(self._change())
        if self._certifying:
            certification_rules.close_at_end(self._change())
        readbacks = await self._access.wind_down(actor=SYSTEM, reason="end date")
        rules.access_ended(self._change(), readbacks)

    async def _transition(self) -> None:
        state = self._state
        assert state.transition_ends_at is not None
        if self._now() < state.transition_ends_at:
            if workflow.patched("transition-closing-notice"):
                await self._converge()  # an emergency revocation is confirmed and reported here too
                closing_at = state.transition_ends_at - self._spec.transition_closing_notice
                if not state.transition_closing_sent:
                    if self._now() >= closing_at:
                        rules.close_transition_notice(self._change())
                        return
                    await self._sleep_until(closing_at, "transition closing notice")
                    return
            await self._sleep_until(state.transition_ends_at, "transition window closes")
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
            if (self._continuing or self._converging) and self._full():  # never in a closing run
                refuse_in_a_full_run(command)
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

    # ================================================================ facts reported by signal

    @workflow.signal(name="background_check_completed")
    def background_check_completed(self, result: CheckCompleted) -> None:
        outcome = check_completed(self._change(), result)
        if outcome == "stale":
            workflow.logger.warning(
                "ignoring a result (%s) from check %s, no longer current", result.outcome, result.check_workflow_id
            )
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

    @workflow.query(name="certification")
    def certification(self) -> CertificationView:
        """The open access certification round (for the certification page)."""
        return certification_view(self._spec, self._state)
