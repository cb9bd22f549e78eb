"""The side-effect lanes of an engagement: records in one, emails in another (``email-lane`` runs;
one lane for both before), admin alerts in a third, all apart from the IAM, so no email, record or
database outage can hold back a grant or a revocation, nor an email outage a record. Each lane keeps
the queue's order among its own effects.

An effect that keeps failing past the engagement's bound (``effect_park_after``) is parked: an admin
alert names it and its last error, the effects behind it go on, and it goes back to the end of the
queue after ``parked_effect_retry_interval`` (or at once, or never, by an operator's command).

Once the run is full (``burst-bound`` runs: its history reached the bound and it is about to continue
as new), the lanes start nothing more, and the effect or alert in flight is cancelled: it stays at the
head of its queue, which the state carries into the next run, where it is performed again. Nothing
in flight holds back the continue-as-new, however long an outage keeps it failing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.engagement import EngagementActivities
    from activities.payloads import AlertInput
    from domain.decisions.change import Change
    from domain.effects import Effect, EmailEffect, ParkedEffect, describe
    from domain.spec import EngagementSpec
    from domain.state import EngagementState
    from workflows.effects import STORAGE, ActivityOptions, batch_at_head, perform_all

ERROR_CHARS = 300
"""How much of an effect's last error an alert and the status keep."""


def last_error(error: BaseException) -> str:
    """The innermost message of an activity's failure chain (the error the activity itself raised)."""
    messages = []
    current: BaseException | None = error
    while current is not None:
        message = getattr(current, "message", None) or str(current)
        if message:
            messages.append(message)
        current = current.__cause__ or getattr(current, "cause", None)
    return (messages[-1] if messages else type(error).__name__)[:ERROR_CHARS]


class SideEffectLanes:
    def __init__(
        self,
        spec: EngagementSpec,
        state: EngagementState,
        change: Callable[[], Change],
        *,
        shown: Callable[[], None],
        full: Callable[[], bool] | None = None,
        batch: bool = False,
        resting: Callable[[], None] = lambda: None,
    ) -> None:
        self._shown = shown
        """Called when what admins see changes (an effect parked, an alert recorded)."""
        self._resting = resting
        """Called as an effect lane goes to sleep with nothing to do (the status memo is upserted)."""
        self._full = full
        """The ``burst-bound`` runs: whether the run is full (start nothing, cancel what is in flight)."""
        self._batch = batch
        """The ``batched-records`` runs: consecutive records at the head of the queue go in one activity."""
        self._split = batch and workflow.patched("email-lane")
        """Runs since ``email-lane``: emails in a lane of their own, beside the records', so a failing
        email holds back no record (and a database outage no email), each lane in its queue order."""
        self._spec = spec
        self._state = state
        self._change = change
        self._busy = 0
        """How many effect lanes have an effect in flight."""
        self._alerting = False
        self._times_parked: dict[int, int] = {}
        """How often each effect was parked in this run (a count for the alert and the status)."""

    @property
    def _engagement_id(self) -> str:
        return workflow.info().workflow_id

    def start(self) -> list[asyncio.Task[None]]:
        if self._split:
            lanes = [self._effects(_records), self._effects(_emails), self._alerts()]
        else:
            lanes = [self._effects(_any), self._alerts()]
        return [asyncio.create_task(lane) for lane in lanes]

    def drained(self) -> bool:
        """Nothing queued, parked, alerting or in flight."""
        state = self._state
        return not (state.effects or state.parked or state.alerts or self._busy)

    def let_go(self) -> bool:
        """Nothing in flight in either lane (a full run continues as new once they have let go)."""
        return not (self._busy or self._alerting)

    def _is_full(self) -> bool:
        return self._full is not None and self._full()

    async def _unless_full(self, work: Awaitable[int]) -> int:
        """Do ``work`` (an activity) and return what it did (how many effects); 0 when the run filled up
        first and it was cancelled (waited out: the attempt in flight has ended), so it is to be done
        again next run."""
        if self._full is None:
            return await work
        task = asyncio.ensure_future(work)
        await workflow.wait_condition(lambda: task.done() or self._is_full())
        if task.done():
            return await task
        task.cancel()
        try:
            return await task  # it completed before the cancellation reached it
        except (ActivityError, asyncio.CancelledError):  # cancelled, or failed once more meanwhile
            return 0

    async def _one(self, work: Awaitable[None]) -> int:
        await work
        return 1

    async def _effects(self, mine: Callable[[Effect], bool]) -> None:
        """Perform the queued effects that are ``mine``, in their queue order."""
        state = self._state
        while True:
            await self._wait_for_work(mine)
            queue = [e for e in state.effects if mine(e)]
            if not queue:
                self._requeue_due()
                continue
            effect = queue[0]
            batch = batch_at_head(queue) if self._batch else []
            if len(batch) < 2:
                batch = [effect]
            self._busy += 1
            try:
                done = await self._unless_full(
                    perform_all(
                        self._engagement_id,
                        state,
                        self._spec,
                        batch,
                        bound=self._spec.effect_park_after,
                        cancellable=self._full is not None,
                    )
                )
            except ActivityError as error:
                self._park(effect, error)  # a batch fails only when its first record does
                done = 1  # set aside, no longer queued
            finally:
                self._busy -= 1
            for performed in batch[:done]:
                at = next((n for n, e in enumerate(state.effects) if e is performed), None)
                if at is None:
                    break
                del state.effects[at]

    async def _wait_for_work(self, mine: Callable[[Effect], bool]) -> None:
        """Until an effect of this lane is queued or the first parked effect is due again; in a full run,
        never (it continues as new first, and the next run's lanes take the queue)."""
        state = self._state
        if not self._is_full():
            due = min((p.retry_at for p in state.parked), default=None)
            timeout = None if due is None else max((due - workflow.now()).total_seconds(), 0.001)
            if not any(mine(e) for e in state.effects):
                self._resting()
            try:
                await workflow.wait_condition(
                    lambda: any(mine(e) for e in state.effects) or self._is_full(), timeout=timeout
                )
            except TimeoutError:
                pass
        if self._is_full():
            await workflow.wait_condition(lambda: not self._is_full())

    def _requeue_due(self) -> None:
        now = workflow.now()
        for parked in [p for p in self._state.parked if p.retry_at <= now]:
            self._state.parked.remove(parked)
            self._state.effects.append(parked.effect)

    def _park(self, effect: Effect, error: ActivityError) -> None:
        change = self._change()
        times = self._times_parked[effect.id] = self._times_parked.get(effect.id, 0) + 1
        message = last_error(error)
        retry_after: timedelta = self._spec.parked_effect_retry_interval
        change.state.parked.append(
            ParkedEffect(
                effect=effect,
                parked_at=change.now,
                last_error=message,
                times_parked=times,
                retry_at=change.now + retry_after,
            )
        )
        change.alert(
            "effect_parked",
            f"{describe(effect)} kept failing for {self._spec.effect_park_after} and is parked "
            f"(retried after {retry_after}): {message}",
            effect_id=effect.id,
            effect=describe(effect),
        )
        self._shown()

    async def _alerts(self) -> None:
        state = self._state
        while True:
            await workflow.wait_condition(lambda: bool(state.alerts) and not self._is_full())
            alert = state.alerts[0]
            self._alerting = True
            try:
                done = await self._unless_full(
                    self._one(
                        workflow.execute_activity_method(
                            EngagementActivities.raise_alert,
                            AlertInput(
                                engagement_id=self._engagement_id,
                                effect_id=alert.id,
                                at=alert.at,
                                kind=alert.kind,
                                message=alert.message,
                                details=alert.details,
                            ),
                            summary=f"admin alert: {alert.kind}",
                            **self._cancellable(STORAGE),
                        )
                    )
                )
            finally:
                self._alerting = False
            if done:
                state.alerts.pop(0)
                self._shown()

    def _cancellable(self, options: ActivityOptions) -> dict[str, Any]:
        if self._full is None:
            return dict(options)
        return {**options, "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED}


def _any(effect: Effect) -> bool:
    return True


def _emails(effect: Effect) -> bool:
    return isinstance(effect, EmailEffect)


def _records(effect: Effect) -> bool:
    return not isinstance(effect, EmailEffect)
