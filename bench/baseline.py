"""The bare-Temporal baseline: a workflow with the product's shape and none of its work.

It accepts as many updates, runs as many activities and starts as many durable timers as the
engagement's history showed in the same bench run, but with plain dataclasses, no-op activities,
no database, no SCIM and no email. What is left is the cost of Temporal itself (server round trips,
workflow tasks, the sandbox, the data converter), which the product's wall time is divided by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from temporalio import activity, workflow

TIMER = timedelta(days=1)
"""Any duration does: the time-skipping test server fires it at once while the result is awaited."""


@dataclass
class BaselineShape:
    activities: int
    timers: int
    updates: int


@dataclass
class Step:
    number: int


@activity.defn(name="baseline_noop")
async def noop(step: Step) -> Step:
    return step


def schedule(shape: BaselineShape) -> list[Literal["activity", "timer"]]:
    """The activities in order, with the timers spread evenly between them, as the product's waits
    fall between its steps."""
    marks: list[tuple[float, Literal["activity", "timer"]]] = [
        ((n + 1) / (shape.activities + 1), "activity") for n in range(shape.activities)
    ]
    marks += [((n + 1) / (shape.timers + 1), "timer") for n in range(shape.timers)]
    return [kind for _, kind in sorted(marks)]


@workflow.defn(name="BaselineWorkflow")
class BaselineWorkflow:
    def __init__(self) -> None:
        self._updates = 0

    @workflow.run
    async def run(self, shape: BaselineShape) -> BaselineShape:
        # The bench sends the updates back to back first: waiting for them keeps the timers below
        # from firing while the updates are still on their way (time only skips during the result).
        await workflow.wait_condition(lambda: self._updates >= shape.updates)
        done = BaselineShape(activities=0, timers=0, updates=0)
        for kind in schedule(shape):
            if kind == "activity":
                await workflow.execute_activity(
                    noop, Step(done.activities), start_to_close_timeout=timedelta(seconds=30)
                )
                done.activities += 1
            else:
                await workflow.sleep(TIMER)
                done.timers += 1
        await workflow.wait_condition(workflow.all_handlers_finished)
        done.updates = self._updates
        return done

    @workflow.update(name="baseline_step")
    def step(self, step: Step) -> Step:
        self._updates += 1
        return step


# The burst baseline (bench/burst.py): the same burst of updates, without the product.


@dataclass
class BurstShape:
    updates: int
    activities: int
    bound: int | None = None
    queue: list[int] = field(default_factory=list)
    """Activities queued and not yet performed (carried into the next run)."""
    received: int = 0
    """Updates received by the runs before."""


@workflow.defn(name="BurstBaselineWorkflow")
class BurstBaselineWorkflow:
    """Updates queue work, one lane performs it in order, continuing as new between activities."""

    @workflow.init
    def __init__(self, shape: BurstShape) -> None:
        self._shape = shape
        self._queue = list(shape.queue)
        self._received = shape.received

    @workflow.run
    async def run(self, shape: BurstShape) -> int:
        while True:
            await workflow.wait_condition(lambda: bool(self._queue) or self._received >= shape.updates)
            if not self._queue:
                break
            info = workflow.info()
            full = shape.bound is not None and info.get_current_history_length() >= shape.bound
            if info.is_continue_as_new_suggested() or full:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    BurstShape(shape.updates, shape.activities, shape.bound, self._queue, self._received)
                )
            await workflow.execute_activity(noop, Step(self._queue[0]), start_to_close_timeout=timedelta(seconds=30))
            self._queue.pop(0)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._received

    @workflow.update(name="burst_command")
    def command(self, step: Step) -> Step:
        """Command number n queues its share of the activities (the product's total, spread evenly)."""
        shape, n = self._shape, step.number
        share = (n + 1) * shape.activities // shape.updates - n * shape.activities // shape.updates
        self._queue.extend([n] * share)
        self._received += 1
        return step
