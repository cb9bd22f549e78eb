"""The bare-Temporal baseline: a workflow with the product's shape and none of its work.

It accepts as many updates, runs as many activities and starts as many durable timers as the
engagement's history showed in the same bench run, but with plain dataclasses, no-op activities,
no database, no SCIM and no email. What is left is the cost of Temporal itself (server round trips,
workflow tasks, the sandbox, the data converter), which the product's wall time is divided by.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Literal

from temporalio import activity, workflow

TIMER = timedelta(days=1)
"""The timers' default: the time-skipping test server fires any duration at once while the result is awaited."""


@dataclass
class BaselineShape:
    activities: int
    timers: int
    updates: int
    children: int = 0
    timer_seconds: float = TIMER.total_seconds()
    """Each timer's duration: on a dev server, the product's own waits (notice, transition) shared out."""
    park: bool = False
    """After the last step, stay open (as an engagement parked in delivery) instead of completing."""
    timers_alongside: bool = False
    """Start every timer at once, the n-th due after n * ``timer_seconds``, while the activities run,
    and finish when both are done: on a dev server, where a timer takes about a second whatever its
    duration, as the product's reminders and deadlines run beside its steps. Otherwise the timers
    fall one by one between the activities."""


@dataclass
class Step:
    number: int


@dataclass
class Progress:
    """What the ``status`` query answers: how far the run is."""

    done: BaselineShape
    parked: bool


Kind = Literal["activity", "timer", "child"]


@activity.defn(name="baseline_noop")
async def noop(step: Step) -> Step:
    return step


def schedule(shape: BaselineShape) -> list[Kind]:
    """The activities in order, with the timers and children spread evenly between them, as the
    product's waits and background checks fall between its steps."""
    counts: list[tuple[int, Kind]] = [
        (shape.activities, "activity"),
        (shape.timers, "timer"),
        (shape.children, "child"),
    ]
    marks = [((n + 1) / (count + 1), kind) for count, kind in counts for n in range(count)]
    return [kind for _, kind in sorted(marks)]


@workflow.defn(name="BaselineChildWorkflow")
class BaselineChildWorkflow:
    """A background check's place in the shape: a child workflow and nothing in it."""

    @workflow.run
    async def run(self, step: Step) -> Step:
        return step


@workflow.defn(name="BaselineWorkflow")
class BaselineWorkflow:
    def __init__(self) -> None:
        self._updates = 0
        self._done = BaselineShape(activities=0, timers=0, updates=0, children=0)
        self._parked = False

    @workflow.run
    async def run(self, shape: BaselineShape) -> BaselineShape:
        # The bench sends the updates back to back first: waiting for them keeps the timers below
        # from firing while the updates are still on their way (time only skips during the result).
        await workflow.wait_condition(lambda: self._updates >= shape.updates)
        done = self._done
        done.timer_seconds, done.park, done.timers_alongside = shape.timer_seconds, shape.park, shape.timers_alongside
        alongside = [
            asyncio.create_task(workflow.sleep((n + 1) * shape.timer_seconds))
            for n in range(shape.timers if shape.timers_alongside else 0)
        ]
        steps = schedule(replace(shape, timers=0) if shape.timers_alongside else shape)
        for kind in steps:
            if kind == "activity":
                await workflow.execute_activity(
                    noop, Step(done.activities), start_to_close_timeout=timedelta(seconds=30)
                )
                done.activities += 1
            elif kind == "timer":
                await workflow.sleep(shape.timer_seconds)
                done.timers += 1
            else:
                await workflow.execute_child_workflow(
                    BaselineChildWorkflow.run,
                    Step(done.children),
                    id=f"{workflow.info().workflow_id}/child/{done.children}",
                )
                done.children += 1
        done.updates = self._updates
        if shape.park:  # its timers still pending, as a parked engagement's reminders and review are
            self._parked = True
            await workflow.wait_condition(lambda: False)
        await asyncio.gather(*alongside)
        done.timers += len(alongside)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return done

    @workflow.update(name="baseline_step")
    def step(self, step: Step) -> Step:
        self._updates += 1
        return step

    @workflow.query(name="status")
    def status(self) -> Progress:
        return Progress(self._done, self._parked)


BASELINE_WORKFLOWS = [BaselineWorkflow, BaselineChildWorkflow]


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
