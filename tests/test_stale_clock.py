"""A timer that fired decides, not the clock of the task that delivers it.

The evidence (``tests/evidence/nondeterminism-after-worker-kill.json``, issue 8 item 7): after a
worker was killed while the second NDA reminder timer was due, the worker that took the retried
workflow task (event 33) answered with a new timer of exactly 17.374477 s, the duration computed in
the task before (event 26, 07:25:33.063320), so the workflow code saw the fire with that task's
clock; every replay sees it with event 33's clock, sends the reminder instead, and fails.

These tests replay the same history twice, once as the server recorded it and once with the retried
task carrying the clock of the task before, and require the same commands from both.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import SANDBOX, WORKFLOWS

EVIDENCE = Path(__file__).resolve().parent / "evidence" / "nondeterminism-after-worker-kill.json"
WORKFLOW_ID = "engagement-ACC-072429-E00"
RETRIED_TASK_STARTED = 33
TASK_BEFORE_STARTED = 26
REMINDER_SCHEDULED = 22  # the first reminder's ActivityTaskScheduled, the template for the second


def _events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads(EVIDENCE.read_text())["events"]
    return events


def _event(events: list[dict[str, Any]], event_id: int) -> dict[str, Any]:
    return next(e for e in events if int(e["eventId"]) == event_id)


def _replayer() -> Replayer:
    return Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=SANDBOX)


def _second_reminder_history(*, stale_clock: bool) -> WorkflowHistory:
    """Events 1-34 of the evidence, then what the retried task must answer: the second reminder."""
    events = copy.deepcopy(_events())
    kept = [e for e in events if int(e["eventId"]) <= RETRIED_TASK_STARTED + 1]
    completed = _event(kept, RETRIED_TASK_STARTED + 1)
    assert completed["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_COMPLETED"
    reminder = copy.deepcopy(_event(events, REMINDER_SCHEDULED))
    attributes = reminder["activityTaskScheduledEventAttributes"]
    payload = attributes["input"]["payloads"][0]
    request = json.loads(base64.b64decode(payload["data"]))
    assert request["kind"] == "nda_reminder" and request["occurrence"] == 1
    request["occurrence"] = 2
    request["facts"]["reminder"] = 2
    payload["data"] = base64.b64encode(json.dumps(request).encode()).decode()
    attributes["activityId"] = "4"
    attributes["workflowTaskCompletedEventId"] = completed["eventId"]
    reminder["eventId"] = str(RETRIED_TASK_STARTED + 2)
    reminder["eventTime"] = completed["eventTime"]
    kept.append(reminder)
    if stale_clock:
        retried = _event(kept, RETRIED_TASK_STARTED)
        assert retried["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_STARTED"
        retried["eventTime"] = _event(kept, TASK_BEFORE_STARTED)["eventTime"]
    return WorkflowHistory.from_json(WORKFLOW_ID, {"events": kept})


def test_the_evidence_is_what_the_report_says() -> None:
    events = _events()
    types = {int(e["eventId"]): e["eventType"] for e in events}
    assert types[30] == "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED"
    assert types[31] == "EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT"
    assert types[RETRIED_TASK_STARTED] == "EVENT_TYPE_WORKFLOW_TASK_STARTED"
    timers = [
        e["timerStartedEventAttributes"]["startToFireTimeout"]
        for e in events
        if e["eventType"].endswith("TIMER_STARTED")
    ]
    # The retried task re-armed the timer of the task before, to the microsecond.
    assert timers == ["19.920565s", "17.374477s", "17.374477s"]


async def test_the_evidence_cannot_replay() -> None:
    """Its event 35 records the old code's decision on a clock no replay has; no code can match it
    without deciding differently on the same events, so it stays a record, not a replay test."""
    history = WorkflowHistory.from_json(WORKFLOW_ID, json.loads(EVIDENCE.read_text()))
    result = await _replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "TimerStarted" in str(result.replay_failure)


@pytest.mark.parametrize("stale_clock", [False, True], ids=["clock-of-the-retried-task", "clock-of-the-task-before"])
async def test_a_fired_reminder_timer_sends_the_reminder_whatever_the_task_clock(stale_clock: bool) -> None:
    history = _second_reminder_history(stale_clock=stale_clock)
    result = await _replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
