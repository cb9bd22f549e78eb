"""Sending one command to an engagement as a Temporal Update, safely through a continue-as-new; and
a signal to a workflow that may have finished.

When an update reaches a run in the very workflow task that closes it (a continue-as-new whose
completion the server refuses because new events arrived), the server answers the caller with
``WorkflowNotReadyFailure``: the task and the update in it were discarded, nothing was applied. The
update is then sent again under the same update id, so the server can never apply it twice.

So is an update that a run refuses because it is full and about to continue as new (the refusal
``ContinuingAsNew``, raised by its validator: nothing was applied, and the next run takes it).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.commands import Ack, Command
from domain.decisions.change import ContinuingAsNew

log = logging.getLogger("updates")
NOT_READY = "temporal.api.errordetails.v1.WorkflowNotReadyFailure"
RESEND_FOR = 90.0
"""Seconds of pauses over which a dropped or refused command is sent again: longer than the longest
side effect a full run waits out before it continues as new (an email attempt, 30 s)."""
FIRST_PAUSE = 0.05
"""Seconds before the first resend; doubled each time up to ``LONGEST_PAUSE``."""
LONGEST_PAUSE = 2.0
_sleep = asyncio.sleep


def pauses() -> Iterator[float]:
    """The pauses between sends, ``RESEND_FOR`` seconds in all."""
    pause, total = FIRST_PAUSE, 0.0
    while total + pause <= RESEND_FOR:
        yield pause
        total += pause
        pause = min(pause * 2, LONGEST_PAUSE)


def not_ready(error: RPCError) -> bool:
    """The update was dropped with a workflow task that failed, before the workflow accepted it."""
    status = error.grpc_status
    return any(detail.type_url.endswith(NOT_READY) for detail in status.details)


def refused_for_the_next_run(error: WorkflowUpdateFailedError) -> bool:
    """The run refused the update, unapplied, because it is continuing as new."""
    cause = error.cause
    return isinstance(cause, ApplicationError) and cause.type == ContinuingAsNew.__name__


async def execute(
    handle: WorkflowHandle[Any, Any],
    update: Any,
    command: Command,
    *,
    rpc_timeout: timedelta | None = None,
) -> Ack:
    """Execute ``update`` (a workflow method or its name) with ``command``; resend only if dropped or
    refused unapplied (a closing run), for ``RESEND_FOR`` seconds of pauses at the most."""
    update_id = f"{type(command).__name__}-{uuid.uuid4()}"
    waits = pauses()
    while True:
        try:
            ack: Ack = await handle.execute_update(
                update, command, id=update_id, result_type=Ack, rpc_timeout=rpc_timeout
            )
            return ack
        except RPCError as error:
            pause = next(waits, None) if not_ready(error) else None
            if pause is None:
                raise
            log.info("update %s dropped with a failed workflow task; sending it again", update_id)
        except WorkflowUpdateFailedError as error:
            pause = next(waits, None) if refused_for_the_next_run(error) else None
            if pause is None:
                raise
            log.info("update %s refused by a run continuing as new; sending it to the next run", update_id)
        await _sleep(pause)


async def signal_if_running(client: Client, workflow_id: str, signal: str, arg: Any) -> bool:
    """Signal the workflow; False (nothing sent) when it has finished or never ran."""
    try:
        await client.get_workflow_handle(workflow_id).signal(signal, arg)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
