"""The replay net's files: a fresh history is replayed with today's workflow code, and saved to
``tests/histories/<name>_<label>.json`` when ``RECORD_HISTORIES=<label>`` is set (e.g. ``v3``).

An existing file is never overwritten: the saved histories are what a refactoring must keep
replaying, so re-recording one means deleting it first, on purpose.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import SANDBOX, WORKFLOWS

HISTORIES = Path(__file__).resolve().parent / "histories"


def recording_label() -> str | None:
    return os.environ.get("RECORD_HISTORIES") or None


async def replay(history: WorkflowHistory) -> None:
    """Replay with the worker's own workflows, converter and sandbox; any nondeterminism fails."""
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=SANDBOX)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def save_history(name: str, history: WorkflowHistory, label: str | None = None) -> Path | None:
    """Write ``{"workflow_id": ..., "history": ...}`` as ``<name>_<label>.json``; nothing without a label."""
    label = label or recording_label()
    if label is None:
        return None
    path = HISTORIES / f"{name}_{label}.json"
    if path.exists():
        raise FileExistsError(f"{path} is already saved: delete it first to record it again")
    saved = {"workflow_id": history.workflow_id, "history": json.loads(history.to_json())}
    path.write_text(json.dumps(saved), encoding="utf-8")
    return path


async def keep(name: str, history: WorkflowHistory) -> None:
    """Replay a fresh history with today's code, then save it if recording."""
    await replay(history)
    save_history(name, history)


async def closed_history(
    client: Client, workflow_id: str, run_id: str | None = None, within: float = 30
) -> WorkflowHistory:
    """The history of a run once it has closed (waiting in real time, without unlocking the
    time-skipping server's clock the way ``result()`` would)."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    deadline = asyncio.get_running_loop().time() + within
    while (await handle.describe()).status is WorkflowExecutionStatus.RUNNING:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{workflow_id} (run {run_id}) still running after {within}s")
        await asyncio.sleep(0.1)
    return await handle.fetch_history()
