"""Converging the client's IAM on the least-privilege plan: every grant and every revocation of an
engagement goes through here, and nothing is believed before the IAM reads it back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError
from temporalio.workflow import ActivityCancellationType, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.engagement import EngagementActivities
    from activities.payloads import AccessOutcome, AccessRequest, AlertInput, ledger_entry
    from domain.access import AccessPlan, checks_for, is_in_step, managed_groups
    from domain.decisions import lifecycle as rules
    from domain.decisions.change import SYSTEM, Change
    from domain.screening import screening_input
    from domain.spec import EngagementSpec
    from domain.state import BackgroundCheckInput, EngagementState, EngineerAccessReadBack, EngineerState
    from domain.vocabulary import ACCESS_PHASES, CheckStatus
    from workflows.background_check import BackgroundCheckWorkflow
    from workflows.effects import IAM, STORAGE
    from workflows.lanes import last_error
    from workflows.screening import ScreeningWorkflow


PASS_STEP = 25
"""``burst-bound`` runs: how many engineers' IAM changes one pass has in flight at once."""


class AccessLane:
    def __init__(
        self,
        spec: EngagementSpec,
        state: EngagementState,
        change: Callable[[], Change],
        *,
        lanes: bool,
        full: Callable[[], bool] | None = None,
    ) -> None:
        self._spec = spec
        self._state = state
        self._change = change
        self._lanes = lanes
        """Engagements started since the ``iam-lane`` patch: the IAM first, its records queued after it."""
        self._full = full
        """The ``burst-bound`` runs: whether the run is full and about to continue as new. A full run
        converges only what takes access away (a revocation never waits for the next run) and starts
        no check; grants and checks are the next run's first pass."""

    @property
    def _engagement_id(self) -> str:
        return workflow.info().workflow_id

    async def converge(self) -> None:
        """Start due background checks, then bring every identity in the IAM in line with the plan."""
        if self._lanes:
            await self._converge_iam_first()
            return
        state = self._state
        for engineer in state.current_engineers():
            if engineer.check is CheckStatus.PENDING and state.phase in ACCESS_PHASES:
                await self._start_check(engineer)
        stale = [e for e in state.engineers if e.reconcile_requested or not is_in_step(self._plan(e), e)]
        if stale:
            await asyncio.gather(
                *(self._apply(e, actor=e.requested_by or SYSTEM, reason=state.phase.value) for e in stale)
            )
        rules.announce_all(self._change())
        rules.report_emergency(self._change())

    async def _converge_iam_first(self) -> None:
        """The IAM before anything else: revocations are not even held back by a check to start."""
        state = self._state
        full = self._is_full()
        stale = [e for e in state.engineers if self._stale(e) and (not full or self._takes_away(e))]
        step = max(len(stale), 1)
        if self._full is not None:
            # burst-bound: a pass goes PASS_STEP engineers at a time, what takes access away first;
            # once the run is full only that goes on, so a pass started before the bound ends soon
            # after it, however many engineers a burst of commands changed.
            stale.sort(key=lambda e: not self._takes_away(e))
            step = PASS_STEP
        for first in range(0, len(stale), step):
            part = [e for e in stale[first : first + step] if not self._is_full() or self._takes_away(e)]
            await asyncio.gather(
                *(self._apply(e, actor=e.requested_by or SYSTEM, reason=state.phase.value) for e in part)
            )
        full = self._is_full()
        while state.checks_to_cancel:  # their engineer left: the check is closed
            await workflow.get_external_workflow_handle(state.checks_to_cancel[0]).cancel()
            state.checks_to_cancel.pop(0)
        for engineer in state.current_engineers() if not full else []:
            if engineer.check is CheckStatus.PENDING and state.phase in ACCESS_PHASES:
                await self._start_check(engineer)
        rules.announce_all(self._change())
        rules.report_emergency(self._change())
        rules.report_restoration_once_confirmed(self._change())

    def _is_full(self) -> bool:
        return self._full is not None and self._full()

    def _stale(self, engineer: EngineerState) -> bool:
        return engineer.reconcile_requested or not is_in_step(self._plan(engineer), engineer)

    def _takes_away(self, engineer: EngineerState) -> bool:
        """The plan takes something away from what the IAM last read back (or the identity ends)."""
        plan = self._plan(engineer)
        return not plan.active or bool(set(engineer.groups) - plan.groups)

    def revocation_waits(self) -> bool:
        """Some engineer's access is to be taken away and the IAM does not show it yet."""
        return any(self._stale(e) and self._takes_away(e) for e in self._state.engineers)

    def idle(self) -> bool:
        """Nothing for the IAM lane to do: every identity matches its plan as last read back, no check
        to start or cancel, nothing to announce. A command that arrived while the lane was busy (a
        revocation during a grant) leaves it not idle, so the engagement converges again at once."""
        state = self._state
        return not state.checks_to_cancel and all(
            not e.announcements
            and not e.reconcile_requested
            and is_in_step(self._plan(e), e)
            and not (e.check is CheckStatus.PENDING and state.phase in ACCESS_PHASES)
            for e in state.engineers
        )

    def _plan(self, engineer: EngineerState) -> AccessPlan:
        return rules.plan(self._spec, self._state, engineer)

    async def _apply(self, engineer: EngineerState, *, actor: str, reason: str) -> EngineerAccessReadBack:
        plan = self._plan(engineer)
        revoking = bool(set(engineer.groups) - plan.groups) or (engineer.identity_active and not plan.active)
        request = AccessRequest(
            engagement_id=self._engagement_id,
            iam=self._spec.iam,
            email=engineer.email,
            display_name=engineer.spec.name,
            active=plan.active,
            groups=sorted(plan.groups),
            scope=sorted(managed_groups(self._spec.roles)),
            expected_groups=sorted(engineer.groups),
            expected_active=engineer.identity_active,
            actor=actor,
            reason=reason,
            at=workflow.now(),
        )
        if self._lanes:
            return await self._apply_then_record(engineer, request, revoking)
        applying = asyncio.create_task(
            workflow.execute_activity_method(EngagementActivities.apply_access, request, **IAM)
        )
        if revoking and workflow.patched("revocation-alert"):
            # Revocation is retried until the IAM confirms it; an admin hears if that takes too long.
            try:
                await workflow.wait_condition(applying.done, timeout=self._spec.revocation_alert_after)
            except TimeoutError:
                await workflow.execute_activity_method(
                    EngagementActivities.raise_alert,
                    AlertInput(
                        engagement_id=self._engagement_id,
                        at=workflow.now(),
                        kind="revocation_unconfirmed",
                        message=(
                            f"the IAM has not confirmed the revocation of {engineer.email}'s access "
                            f"({reason}) after {self._spec.revocation_alert_after}; still retrying"
                        ),
                        details={"engineer": engineer.email, "reason": reason, "iam": self._spec.iam.scim_base_url},
                    ),
                    **STORAGE,
                )
        readback = await applying
        rules.access_applied(self._change(), engineer, readback, actor, reason)
        return readback

    async def _apply_then_record(
        self, engineer: EngineerState, request: AccessRequest, revoking: bool
    ) -> EngineerAccessReadBack:
        """The IAM change and its read-back, then (queued) the ledger and audit rows that record it."""
        planned = (request.active, frozenset(request.groups))

        def superseded() -> bool:
            plan = self._plan(engineer)
            return (plan.active, plan.groups) != planned

        async def done_or_superseded(task: asyncio.Task[Any], within: timedelta | None = None) -> None:
            await workflow.wait_condition(lambda: task.done() or superseded(), timeout=within)

        alerted = False
        while True:
            applying = asyncio.create_task(
                workflow.execute_activity_method(
                    EngagementActivities.converge_access,
                    request,
                    summary=f"IAM: {'revoke' if revoking else 'converge'} engineer "
                    f"{self._state.engineers.index(engineer) + 1} ({request.reason})",
                    # A superseded change is waited out, so no late call lands after the next one.
                    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                    **IAM,
                )
            )
            try:
                await done_or_superseded(applying, self._spec.revocation_alert_after)
            except TimeoutError:  # still retrying: an admin hears of it once, and it goes on
                if not alerted:
                    self._alert_unconfirmed(engineer, request, revoking, "still retrying")
                    alerted = True
                await done_or_superseded(applying)
            if not applying.done():
                # The plan changed under it (a revocation while a grant waits for the database): give
                # this change up and let the next pass converge on the newest plan at once.
                applying.cancel()
                with contextlib.suppress(asyncio.CancelledError, ActivityError):
                    await applying
                engineer.reconcile_requested = True  # it may have changed the IAM: read it back afresh
                return _as_last_read(engineer)
            try:
                outcome: AccessOutcome = await applying
                break
            except ActivityError as error:  # the IAM refuses for good (a revoked token, a bad policy)
                if not alerted:
                    self._alert_unconfirmed(engineer, request, revoking, f"refused: {last_error(error)}")
                    alerted = True
                try:  # a person must act; try again later, or at once for a newer plan
                    await workflow.wait_condition(superseded, timeout=self._spec.revocation_alert_after)
                    return _as_last_read(engineer)
                except TimeoutError:
                    pass
        readback = outcome.readback
        if not readback.membership_verified or readback.shared_lookup_failed:
            self._change().alert(
                "iam_unverified" if not readback.membership_verified else "shared_lookup_failed",
                f"the IAM change ({request.reason}) cannot be proven: {outcome.problem or 'no reason given'}",
                engineer=engineer.email,
                iam=self._spec.iam.scim_base_url,
            )
        change = self._change()
        change.queue(ledger_entry(request, outcome))
        rules.access_applied(change, engineer, outcome.readback, request.actor, request.reason)
        return outcome.readback

    def _alert_unconfirmed(self, engineer: EngineerState, request: AccessRequest, revoking: bool, how: str) -> None:
        what = "revocation" if revoking else "change"
        self._change().alert(
            "revocation_unconfirmed" if revoking else "access_unconfirmed",
            f"the IAM has not confirmed the {what} of an engineer's access ({request.reason}) after "
            f"{self._spec.revocation_alert_after}; {how}",
            engineer=engineer.email,
            reason=request.reason,
            iam=self._spec.iam.scim_base_url,
        )

    async def wind_down(self, *, actor: str, reason: str) -> list[EngineerAccessReadBack]:
        """Cancel running checks and apply the (empty) plan to every identity; return the read-backs."""
        for engineer in self._state.engineers:
            if engineer.check is CheckStatus.IN_PROGRESS and engineer.check_workflow_id:
                await workflow.get_external_workflow_handle(engineer.check_workflow_id).cancel()
                engineer.check = CheckStatus.CANCELLED
            elif engineer.check is CheckStatus.PENDING:
                engineer.check = CheckStatus.CANCELLED
        engineers = self._state.engineers
        return list(await asyncio.gather(*(self._apply(e, actor=actor, reason=reason) for e in engineers)))

    async def review(self) -> None:
        """Read what the IAM actually holds, remove drift, restore what is missing, report it."""
        engineers = self._state.engineers
        readbacks = await asyncio.gather(*(self._apply(e, actor=SYSTEM, reason="access review") for e in engineers))
        rules.access_reviewed(self._change(), list(readbacks))

    async def _start_check(self, engineer: EngineerState) -> None:
        state = self._state
        state.check_workflows_started += 1
        child_id = f"{self._engagement_id}/check/{state.check_workflows_started}"
        screening = self._spec.screening
        # Only specs that name a provider (a field added with it) take this path: older runs never do.
        if screening is not None and screening.provider != "manual" and workflow.patched("screening-provider"):
            await workflow.start_child_workflow(
                ScreeningWorkflow.run,
                screening_input(self._spec, engineer.spec, self._engagement_id),
                id=child_id,
                parent_close_policy=ParentClosePolicy.ABANDON,  # it reports back by signal, like the manual check
            )
            rules.check_started(self._change(), engineer, child_id, checks_for(engineer.spec.jurisdiction))
            return
        await workflow.start_child_workflow(
            BackgroundCheckWorkflow.run,
            BackgroundCheckInput(
                engagement_workflow_id=self._engagement_id,
                engagement_id=self._engagement_id,
                client=self._spec.client.name,
                engineer=engineer.spec,
                checks=checks_for(engineer.spec.jurisdiction),
                reminder_interval=self._spec.check_reminder_interval,
            ),
            id=child_id,
            # The check outlives a continue-as-new of its engagement: it reports back by signal.
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        rules.check_started(self._change(), engineer, child_id, checks_for(engineer.spec.jurisdiction))


def _as_last_read(engineer: EngineerState) -> EngineerAccessReadBack:
    """What the IAM last confirmed for an engineer (a superseded change confirmed nothing new)."""
    return EngineerAccessReadBack(
        email=engineer.email,
        scim_user_id=engineer.scim_user_id,
        identity_active=engineer.identity_active,
        groups=list(engineer.groups),
    )
