"""The worker's heartbeat interceptor: an activity given a heartbeat timeout heartbeats while it runs
without its own code knowing, so a lost attempt is noticed within the heartbeat timeout and a
cancellation reaches a running attempt, which is told (``activity.is_cancelled()``) but never cut
off in the middle of a call."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.exceptions import ActivityError, CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from adapters.heartbeats import Heartbeats
from workflows.effects import HEARTBEAT

WITHIN = 60.0
"""A bound on each wait, for a clear failure instead of a hang; every wait ends on an event."""


class Attempt:
    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.interrupted = False

    @activity.defn(name="wait_for_ever")
    async def wait_for_ever(self) -> None:
        """Works until told it was cancelled; nothing cuts it off midway (it is never interrupted)."""
        self.started.set()
        try:
            await activity.wait_for_cancelled()
        except asyncio.CancelledError:
            self.interrupted = True
            raise
        self.cancelled.set()
        raise asyncio.CancelledError


@workflow.defn(name="CancelsARunningAttempt")
class CancelsARunningAttempt:
    def __init__(self) -> None:
        self.stop = False

    @workflow.run
    async def run(self) -> str:
        running = workflow.start_activity(
            "wait_for_ever",
            start_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=HEARTBEAT,
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await workflow.wait_condition(lambda: self.stop)
        running.cancel()
        try:
            await running
        except ActivityError as error:
            return "cancelled" if isinstance(error.cause, CancelledError) else f"failed: {error.cause}"
        return "completed"

    @workflow.signal(name="stop")
    def stop_it(self) -> None:
        self.stop = True


async def test_a_cancellation_reaches_an_attempt_that_never_heartbeats_itself(env: WorkflowEnvironment) -> None:
    attempt = Attempt()
    queue = f"heartbeats-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[CancelsARunningAttempt],
        activities=[attempt.wait_for_ever],
        interceptors=[Heartbeats()],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await env.client.start_workflow(CancelsARunningAttempt.run, id=queue, task_queue=queue)
        await asyncio.wait_for(attempt.started.wait(), WITHIN)
        await handle.signal(CancelsARunningAttempt.stop_it)
        assert await asyncio.wait_for(handle.result(), WITHIN) == "cancelled"
    assert attempt.cancelled.is_set(), "the running attempt itself was told, through its heartbeats"
    assert not attempt.interrupted, "and it finished what it was doing: nothing cut it off midway"
