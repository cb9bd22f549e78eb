"""A worker crash never makes an engagement unreadable (issue 8, item 7).

On the Temporal dev server with the real worker process: an engagement waits for its NDA with a
reminder every 2 s; the worker is killed (SIGKILL) while a reminder timer is due, commands arrive
while no worker runs (refused ones each time, an accepted one the last time), a new worker starts
and takes the retried workflow task. The engagement must carry on, its ``status`` must answer, and
its history must replay against the workflow code.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from adapters.scim import ScimDirectory
from domain.commands import AskQuestion, RecordNdaSigned
from domain.vocabulary import Phase
from tests.devserver import Cli, WorkerProcess, address, dev_server, requires_temporal
from tests.sample_spec import spec_data
from worker import SANDBOX, WORKFLOWS
from workflows.commands import send
from workflows.engagement import EngagementWorkflow

RUN_EARLY = True  # one of the longest files: started first (tests/conftest.py)

__all__ = ["dev_server"]  # the fixture, imported to be visible here

pytestmark = [requires_temporal, pytest.mark.timeout(400)]

KILLS = 3
WAIT = 60.0
"""The longest any one step may take: a dead worker's sticky task times out after 2 s (below)."""


async def _events(handle: WorkflowHandle[Any, Any]) -> list[HistoryEvent]:
    return [event async for event in handle.fetch_history_events()]


async def _until(
    handle: WorkflowHandle[Any, Any], done: Callable[[list[HistoryEvent]], bool], what: str
) -> list[HistoryEvent]:
    deadline = time.monotonic() + WAIT
    while True:
        events = await _events(handle)
        if done(events):
            return events
        if time.monotonic() > deadline:
            tail = "\n".join(f"{e.event_id} {EventType.Name(e.event_type)}" for e in events[-12:])
            pending = (await handle.describe()).raw_description.pending_activities
            raise AssertionError(f"not {what} within {WAIT} s; last events:\n{tail}\npending activities: {pending}")
        await asyncio.sleep(0.1)


def _count(events: Sequence[HistoryEvent], kind: int) -> int:
    return sum(1 for e in events if e.event_type == kind)


def _more(kind: int, than: int) -> Callable[[list[HistoryEvent]], bool]:
    return lambda events: _count(events, kind) > than


def _more_reminders(than: int) -> Callable[[list[HistoryEvent]], bool]:
    return lambda events: _reminders(events) > than


def _reminders(events: list[HistoryEvent]) -> int:
    """NDA reminders the workflow asked to send (each one a send_email activity of that kind)."""
    sent = 0
    for event in events:
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        attributes = event.activity_task_scheduled_event_attributes
        if attributes.activity_type.name != "send_email":
            continue
        request = json.loads(attributes.input.payloads[0].data)
        sent += request["kind"] == "nda_reminder"
    return sent


def _kill(worker: WorkerProcess) -> None:
    assert worker.process is not None and worker.process.returncode is None
    worker.process.send_signal(signal.SIGKILL)


async def test_killed_worker_while_a_reminder_is_due_leaves_the_engagement_readable(
    dev_server: WorkflowEnvironment, database_url: str, tenant: ScimDirectory, tmp_path: Path
) -> None:
    cli = Cli(address(dev_server), database_url, tmp_path)
    # A dead worker's engagements wait this long (Temporal's default: 10 s) before the next worker takes
    # them: shorter here, so three kills cost less waiting; the timeout is still what hands them over.
    cli.extra["WORKER_STICKY_TIMEOUT"] = "PT2S"
    spec = spec_data(tenant.base_url) | {"nda_reminder_interval": "PT2S", "nda_deadline": "P1D"}
    contract = spec["contract_id"]
    handle = dev_server.client.get_workflow_handle(f"engagement-{contract}")

    worker = WorkerProcess(cli)
    try:
        await worker.start()
        await cli.ok("start", str(cli.write_spec(spec)))
        for kill in range(1, KILLS + 1):
            before = await _events(handle)
            timers = _count(before, EventType.EVENT_TYPE_TIMER_STARTED)
            # A reminder timer is armed: the worker dies before it fires.
            await _until(handle, _more(EventType.EVENT_TYPE_TIMER_STARTED, timers), "a timer armed")
            _kill(worker)
            assert worker.process is not None
            await asyncio.wait_for(worker.process.wait(), WAIT)
            armed = await _events(handle)
            reminders = _reminders(armed)
            fired = _count(armed, EventType.EVENT_TYPE_TIMER_FIRED)
            if kill > 1:  # the first time the command comes before the fire, then after it
                await _until(handle, _more(EventType.EVENT_TYPE_TIMER_FIRED, fired), "the timer fired")

            # Commands while no worker runs: a refused one each time, an accepted one the last time.
            question = AskQuestion(actor="ops", question_id=f"q{kill}", text="Where is the DR plan?")
            refused = asyncio.create_task(send(handle, question))
            signed = RecordNdaSigned(actor="ops", signed_by="Sam Signer")
            accepted = asyncio.create_task(send(handle, signed)) if kill == KILLS else None

            worker = WorkerProcess(cli)
            await worker.start()
            with pytest.raises(WorkflowUpdateFailedError) as refusal:
                await asyncio.wait_for(refused, WAIT)
            # With the NDA signed alongside it (last round), either may be decided first.
            assert "not allowed in phase" in str(refusal.value.cause) and "(allowed in: transition)" in str(
                refusal.value.cause
            )
            if accepted is not None:
                ack = await asyncio.wait_for(accepted, WAIT)
                assert ack.phase is Phase.ONBOARDING
            else:  # the engagement moves on: the reminder that was due goes out
                await _until(handle, _more_reminders(reminders), "a reminder sent after the restart")

        view = await handle.query(EngagementWorkflow.status)
        assert view.phase is Phase.ONBOARDING
        assert view.questions == []  # every refused command changed nothing
        history = await handle.fetch_history()
    finally:
        if worker.process is not None and worker.process.returncode is None:
            worker.process.kill()
            await worker.process.wait()

    timeouts = _count(history.events, EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT)
    assert timeouts >= KILLS, "every kill left a workflow task to time out and be retried"
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=SANDBOX)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
    # A re-armed NDA timer (the symptom) would repeat the previous one's duration to the microsecond.
    # (Other timers, such as the IAM lane's unconfirmed-change alert, legitimately repeat a duration.)
    durations = [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED and b"NDA" in e.user_metadata.summary.data
    ]
    assert durations, "the NDA timers are named in the history"
    assert all(a != b for a, b in itertools.pairwise(durations)), durations
