"""The client side of a provider check: find an engineer's check of an engagement and adjudicate it.

The checks of an engagement are its children ``<engagement id>/check/<n>``, numbered from 1; the CLI
asks each in turn (the query travels encrypted like every payload) for the engineer's running one.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.screening import Adjudicate, ScreeningView
from domain.state import CheckCompleted
from workflows.screening import ScreeningWorkflow

MAX_CHECKS = 1000
"""More checks than one engagement can have started (engineers x role changes)."""


class CheckNotFound(Exception):
    pass


async def find_check(client: Client, engagement_workflow_id: str, email: str) -> WorkflowHandle[Any, CheckCompleted]:
    """The engineer's provider check that still runs (the newest, when there were several)."""
    found: WorkflowHandle[Any, CheckCompleted] | None = None
    for n in range(1, MAX_CHECKS + 1):
        handle: WorkflowHandle[Any, CheckCompleted] = client.get_workflow_handle(
            f"{engagement_workflow_id}/check/{n}", result_type=CheckCompleted
        )
        try:
            view: ScreeningView = await handle.query(ScreeningWorkflow.status)
        except RPCError as error:
            if error.status is RPCStatusCode.NOT_FOUND:
                break
            continue  # a manual check (another workflow type) does not answer this query
        if view.engineer.lower() == email.lower() and view.outcome is None:
            found = handle
    if found is None:
        raise CheckNotFound(f"{email} has no provider background check running in {engagement_workflow_id}")
    return found


async def adjudicate(client: Client, engagement_workflow_id: str, email: str, command: Adjudicate) -> ScreeningView:
    """Send a person's adjudication; a refusal comes back as ApplicationError with its reason."""
    handle = await find_check(client, engagement_workflow_id, email)
    try:
        return await handle.execute_update(ScreeningWorkflow.adjudicate, command)
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        raise ApplicationError(cause.message if isinstance(cause, ApplicationError) else str(cause)) from None
