"""What the CLI asks of Temporal: start, send a command, read one engagement, find many.

Every call that needs the worker (a query, an update) is bounded by ``CLI_WORKER_WAIT``: when no
worker answers, the person learns it within that time instead of waiting on a silent server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from adapters import search_attributes as sa
from adapters.temporal_connection import TemporalConfigError, TemporalConnectionError
from adapters.temporal_connection import connect as temporal_connect
from adapters.updates import execute
from cli.errors import CliError, Exit
from domain.commands import Ack, Command
from domain.phases import RULES
from domain.spec import EngagementSpec
from domain.state import EngagementInput
from domain.views import STATUS_MEMO, StatusView, unpack_status
from domain.vocabulary import describe_duration
from settings import Settings

WORKFLOW_ID_PREFIX = "engagement-"
# The workflow's stable names (the phase table holds the updates'). The CLI names them rather than
# importing workflows/, which loads every activity and adapter (seconds) for a one-shot command;
# tests/unit/test_cli_help.py holds these equal to the workflow's definitions.
WORKFLOW_TYPE = "EngagementWorkflow"
STATUS_QUERY = "status"


def workflow_id(engagement: str) -> str:
    return engagement if engagement.startswith(WORKFLOW_ID_PREFIX) else WORKFLOW_ID_PREFIX + engagement


async def connect(settings: Settings) -> Client:
    """The CLI's client; with ``TRACING_ENABLED`` its calls start the traces the worker continues."""
    interceptors = []
    if settings.tracing_enabled:
        from adapters.telemetry import tracing_interceptor

        interceptors.append(tracing_interceptor("engagement-cli"))
    try:
        return await temporal_connect(settings, interceptors=interceptors)
    except TemporalConnectionError as error:
        code = Exit.BAD_INPUT if isinstance(error, TemporalConfigError) else Exit.UNREACHABLE
        raise CliError(str(error), code) from None


class WorkerSilent(Exception):
    """Temporal answered, no worker did within the wait."""


async def start_engagement(
    client: Client, spec: EngagementSpec, task_queue: str, history_limit: int | None = None
) -> WorkflowHandle[Any, Any]:
    try:
        return await client.start_workflow(
            WORKFLOW_TYPE,
            EngagementInput(spec=spec, continue_as_new_after_events=history_limit),
            id=workflow_id(spec.contract_id),
            task_queue=task_queue,
            # One contract, one workflow, ever: a second start is refused, even after the first closed.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            # Findable from the first instant, before any worker ran it; the workflow keeps them current.
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.ENGAGEMENT_PHASE, "awaiting_nda"),
                    SearchAttributePair(sa.ENGAGEMENT_CLIENT, spec.client.name),
                    SearchAttributePair(sa.ENGAGEMENT_TYPE, spec.engagement_type.value),
                    SearchAttributePair(sa.CONTRACT_ID, spec.contract_id),
                    SearchAttributePair(sa.NEEDS_ATTENTION, False),
                ]
            ),
            # What an admin sees first in the Temporal UI.
            static_summary=(
                f"{spec.client.name} · contract {spec.contract_id} · "
                f"{spec.engagement_type.value.replace('_', ' ')} · {len(spec.engineers)} engineer(s)"
            ),
            static_details=(
                f"NDA {spec.agreement.nda_reference}; IP assignment: {spec.agreement.ip_assignment_clause}. "
                f"Notice {describe_duration(spec.notice_period)}, "
                f"transition {describe_duration(spec.transition_window)}. "
                f"Client IAM: {spec.iam.scim_base_url} ({spec.iam.dialect}, {spec.iam.deprovision})."
            ),
        )
    except WorkflowAlreadyStartedError:
        raise CliError(f"contract {spec.contract_id} already has an engagement; nothing was started") from None
    except RPCError as error:
        unregistered(error)
        raise


def unregistered(error: RPCError) -> None:
    """A search attribute the namespace does not know: say how to register them."""
    if error.status == RPCStatusCode.INVALID_ARGUMENT and "not defined" in error.message:
        raise CliError(
            f"{error.message}: register the search attributes with `starter.py setup-search-attributes`"
        ) from None


async def send_command(
    client: Client, engagement: str, command: Command, wait: timedelta = timedelta(seconds=10)
) -> Ack:
    handle = client.get_workflow_handle(workflow_id(engagement))
    try:
        return await execute(handle, RULES[type(command)].update, command, rpc_timeout=wait)
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise CliError(f"refused: {reason}") from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise WorkerSilent from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"no running engagement {workflow_id(engagement)}") from None
        raise


async def read_status(client: Client, engagement: str, wait: timedelta = timedelta(seconds=10)) -> StatusView:
    """The engagement's status view; ``WorkerSilent`` when no worker answers within ``wait``.

    A run that keeps its view in its memo (``status-memo``) is read from there, with no worker
    replaying its history, when the memo is current: the run is closed, or it is at rest (no workflow
    task or activity pending: the workflow upserted the view as it went to sleep) and a worker polls
    its task queue (else nothing would move it on, and the person is told so, as ever). Otherwise
    the worker is asked, by the ``status`` query: its answer is live.
    """
    handle = client.get_workflow_handle(workflow_id(engagement))
    try:
        description = await handle.describe(rpc_timeout=wait)
        packed = await description.memo_value(STATUS_MEMO, None, type_hint=bytes)
        kept = unpack_status(packed) if isinstance(packed, bytes) else None
        raw = description.raw_description
        at_rest = not raw.pending_activities and not raw.HasField("pending_workflow_task")
        if kept is not None and (
            description.status is not WorkflowExecutionStatus.RUNNING
            or (at_rest and await _polled(client, description.task_queue, wait))
        ):
            return kept
        view: StatusView = await handle.query(STATUS_QUERY, result_type=StatusView, rpc_timeout=wait)
        return view
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"no engagement {workflow_id(engagement)}") from None
        if error.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise WorkerSilent from None
        if error.status == RPCStatusCode.FAILED_PRECONDITION and "no poller" in error.message:
            raise WorkerSilent from None  # the server's own word: "no poller seen for task queue recently"
        raise


async def _polled(client: Client, task_queue: str, wait: timedelta) -> bool:
    """A worker has polled the task queue lately (the server forgets a poller after a few minutes)."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    try:
        response = await client.workflow_service.describe_task_queue(request, timeout=wait)
    except RPCError as error:
        if error.status in (RPCStatusCode.UNIMPLEMENTED, RPCStatusCode.PERMISSION_DENIED):
            return False  # a server (the time-skipping test server) or a role that cannot tell: ask live
        raise
    return bool(response.pollers)


@dataclass(frozen=True)
class Record:
    """One engagement as Temporal itself records it (no worker needed): the run and its search attributes."""

    id: str
    status: str
    """The workflow run: RUNNING, COMPLETED, TERMINATED, FAILED, CANCELED, TIMED_OUT."""
    phase: str | None
    client: str | None
    engagement_type: str | None
    end_date: datetime | None
    next_deadline: datetime | None
    next_deadline_label: str | None
    needs_attention: bool | None
    started_at: datetime | None
    closed_at: datetime | None

    @classmethod
    def of(cls, execution: WorkflowExecution) -> Record:
        found = execution.typed_search_attributes
        status = execution.status or WorkflowExecutionStatus.RUNNING
        return cls(
            id=execution.id,
            status=status.name,
            phase=found.get(sa.ENGAGEMENT_PHASE),
            client=found.get(sa.ENGAGEMENT_CLIENT),
            engagement_type=found.get(sa.ENGAGEMENT_TYPE),
            end_date=found.get(sa.END_DATE),
            next_deadline=found.get(sa.NEXT_DEADLINE),
            next_deadline_label=found.get(sa.NEXT_DEADLINE_LABEL),
            needs_attention=found.get(sa.NEEDS_ATTENTION),
            started_at=execution.start_time,
            closed_at=execution.close_time,
        )

    @property
    def state(self) -> str:
        """What became of it, in one word: the phase while it runs; for a run that ended, ``closed`` or
        ``cancelled`` when it completed (its phase says which), else how Temporal ended it."""
        if self.status == "RUNNING":
            return self.phase or "running"
        if self.status == "COMPLETED":
            return self.phase or "completed"
        return self.status.lower() + (f" in {self.phase}" if self.phase else "")

    def as_json(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return {
            "id": self.id,
            "status": self.status,
            "state": self.state,
            "phase": self.phase,
            "client": self.client,
            "engagement_type": self.engagement_type,
            "end_date": iso(self.end_date),
            "next_deadline": iso(self.next_deadline),
            "next_deadline_label": self.next_deadline_label,
            "needs_attention": self.needs_attention,
            "started_at": iso(self.started_at),
            "closed_at": iso(self.closed_at),
        }


async def describe(client: Client, engagement: str) -> Record:
    try:
        return Record.of(await client.get_workflow_handle(workflow_id(engagement)).describe())
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"no engagement {workflow_id(engagement)}") from None
        raise


async def find(client: Client, query: str, limit: int = 1000) -> list[Record]:
    try:
        return [Record.of(execution) async for execution in client.list_workflows(query, limit=limit)]
    except RPCError as error:
        unregistered(error)
        raise
