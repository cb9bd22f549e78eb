"""The bare-Temporal baseline: a workflow with the product's shape and none of its work.

It accepts as many updates, runs as many activities and starts as many durable timers as the
engagement's history showed in the same bench run, but with plain dataclasses, no-op activities,
no database, no SCIM and no email. What is left is the cost of Temporal itself (server round trips,
workflow tasks, the sandbox, the data converter), which the product's wall time is divided by.
"""

from __future__ import annotations

from dataclasses import dataclass
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
