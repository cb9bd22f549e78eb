"""The engagement's phases, one step each: what the main loop does in a phase before it loops again.

A mixin of ``EngagementWorkflow`` (its main loop picks the step by phase): each step converges the
IAM, decides what the clock says is due through the plain rules of ``domain.decisions``, or sleeps
until the next moment. The attributes and methods declared below are the workflow's.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.decisions import certification as certification_rules
    from domain.decisions import lifecycle as rules
    from domain.decisions.change import SYSTEM, Change
    from domain.spec import EngagementSpec
    from domain.state import EngagementState
    from domain.vocabulary import Phase
    from workflows.access import AccessLane


class PhaseSteps:
    _spec: EngagementSpec
    _state: EngagementState
    _access: AccessLane
    _certifying: bool
    _events: int

    def _change(self) -> Change:
        raise NotImplementedError

    def _now(self) -> datetime:
        raise NotImplementedError

    def _full(self) -> bool:
        raise NotImplementedError

    def _converge_again(self) -> bool:
        raise NotImplementedError

    async def _converge(self) -> None:
        raise NotImplementedError

    async def _sleep_until(self, moment: datetime | None, label: str | None = None) -> None:
        raise NotImplementedError

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
