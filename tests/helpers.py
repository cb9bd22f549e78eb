"""What the tests share: a sample spec, a running worker on a fresh task queue, and readers of the
real peers' state (the SCIM tenant, the database, the outbox folder)."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.email import EmailActivities
from activities.engagement import EngagementActivities
from activities.screening import ScreeningActivities
from adapters.alerts import AlertStore
from adapters.certification_links import LinkSigner
from adapters.db import EngagementStore
from adapters.email import EmailSender, OutboxFolderSender
from adapters.outbox import OutboxStore
from adapters.scim import DirectoryPool, ScimDirectory
from domain.commands import (
    Ack,
    Command,
    GiveNotice,
    RecordCheckResult,
    RecordDocument,
    RecordNdaSigned,
    ScheduleSession,
)
from domain.spec import EngagementSpec, parse_spec
from domain.state import EngagementInput
from domain.views import StatusView
from domain.vocabulary import KnowledgeTransferDocument, Phase
from tests.sample_spec import ALL_GROUPS, spec_data
from worker import new_worker
from workflows.commands import send
from workflows.engagement import EngagementWorkflow


@dataclass
class IdentityView:
    exists: bool
    active: bool
    groups: set[str]


@dataclass
class Harness:
    client: Client
    store: EngagementStore
    mail: OutboxStore
    tenant: ScimDirectory
    outbox: Path
    task_queue: str
    started: list[WorkflowHandle[Any, Any]] = field(default_factory=list)
    poll_seconds: float = 0.1
    """How often settle() asks the workflow for its status (the benchmark asks more often)."""

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls,
        client: Client,
        store: EngagementStore,
        tenant: ScimDirectory,
        tmp_path: Path,
        scim_tokens: dict[str, str] | None = None,
        mailer: EmailSender | None = None,
        screening: ScreeningActivities | None = None,
        links: LinkSigner | None = None,
    ) -> AsyncIterator[Harness]:
        for group in ALL_GROUPS:  # the client's IAM owner created the policy's groups
            await tenant.create_group(group)
        outbox = tmp_path / "outbox"
        directories = DirectoryPool(scim_tokens or {})
        engagement = EngagementActivities(store, directories, AlertStore(store.engine))
        mail = OutboxStore(store.engine)
        email = EmailActivities(mail, mailer or OutboxFolderSender(outbox, "eo@firm.example", "EO"), links=links)
        task_queue = f"tq-{uuid.uuid4().hex[:8]}"
        harness = cls(client, store, mail, tenant, outbox, task_queue)
        async with new_worker(client, task_queue, engagement, email, screening=screening):
            try:
                yield harness
            finally:
                await harness._terminate_leftovers()
        await directories.close()

    async def _terminate_leftovers(self) -> None:
        """A workflow left running without its worker would hold the shared test server's clock, and
        so does an activity cut off by the worker's shutdown: let those finish first (bounded)."""
        for handle in self.started:
            latest = self.client.get_workflow_handle(handle.id)
            for _ in range(50):
                with contextlib.suppress(RPCError):
                    if not (await latest.describe()).raw_description.pending_activities:
                        break
                await asyncio.sleep(0.1)
            # By id alone: after continue-as-new the first run is closed, the latest one is not. The
            # background checks are abandoned children (they outlive continue-as-new): end them too.
            ids = [handle.id, *(f"{handle.id}/check/{n}" for n in range(1, 11))]
            for workflow_id in ids:
                with contextlib.suppress(RPCError):  # already closed, or never started
                    await self.client.get_workflow_handle(workflow_id).terminate(reason="test finished")

    def spec(self, **changes: Any) -> EngagementSpec:
        data = spec_data(self.tenant.base_url)
        data.update(changes)
        return parse_spec(data)

    async def alerts(self, handle: WorkflowHandle[Any, Any]) -> list[Any]:
        return await AlertStore(self.store.engine).alerts(handle.id)

    async def drive_to(self, handle: WorkflowHandle[Any, Any], phase: Phase) -> StatusView:
        """Take a fresh engagement (the sample spec) to onboarding, delivery or notice."""
        await self.settle(handle, Phase.AWAITING_NDA)
        await self.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam"))
        view = await self.settle(handle, Phase.ONBOARDING)
        if phase is Phase.ONBOARDING:
            return view
        for engineer in view.engineers:
            if engineer.check.value == "in_progress":
                await self.update(
                    handle,
                    RecordCheckResult(actor="hr", email=engineer.email, outcome="cleared"),
                )
        view = await self.settle(handle, Phase.DELIVERY)
        if phase is Phase.DELIVERY:
            return view
        await self.update(handle, GiveNotice(actor="erin", given_by="client"))
        return await self.settle(handle, Phase.NOTICE)

    async def hand_over(self, handle: WorkflowHandle[Any, Any], session_starts: datetime | None = None) -> None:
        """In notice: the five knowledge-transfer documents recorded, and (when it starts at a given time)
        the handover session "s1" scheduled."""
        for document in KnowledgeTransferDocument:
            await self.update(
                handle, RecordDocument(actor="fran", document=document, location=f"https://wiki.example/{document}")
            )
        if session_starts is not None:
            await self.update(
                handle, ScheduleSession(actor="fran", session_id="s1", title="Architecture", starts_at=session_starts)
            )

    async def start(self, spec: EngagementSpec, history_limit: int | None = None) -> WorkflowHandle[Any, Any]:
        handle = await self.client.start_workflow(
            EngagementWorkflow.run,
            EngagementInput(spec=spec, continue_as_new_after_events=history_limit),
            id=f"engagement-{spec.contract_id}",
            task_queue=self.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        self.started.append(handle)
        return handle

    @staticmethod
    async def update(handle: WorkflowHandle[Any, Any], command: Command) -> Ack:
        return await send(handle, command)

    @staticmethod
    async def status(handle: WorkflowHandle[Any, Any]) -> StatusView:
        return await handle.query(EngagementWorkflow.status)

    async def settle(
        self, handle: WorkflowHandle[Any, Any], phase: Phase | None = None, within: float = 30
    ) -> StatusView:
        """Wait (in real time) until the workflow reached the phase and has no side effect pending."""
        deadline = asyncio.get_running_loop().time() + within
        view: StatusView | None = None
        while True:
            try:
                view = await self.status(handle)
            except RPCError as error:  # a query may time out on a loaded machine: ask again
                timed_out = error.status is RPCStatusCode.DEADLINE_EXCEEDED or "Timeout expired" in error.message
                if not timed_out:
                    raise
            else:
                if (phase is None or view.phase is phase) and view.settled:
                    return view
            if asyncio.get_running_loop().time() > deadline:
                shown = view.model_dump_json(indent=1) if view else "no answer"
                raise AssertionError(
                    f"not settled in {phase} within {within}s: {shown}\n{await self._diagnosis(handle)}"
                )
            await asyncio.sleep(self.poll_seconds)

    async def _diagnosis(self, handle: WorkflowHandle[Any, Any]) -> str:
        """Where the latest run waits: its pending activities and its last history events."""
        latest = self.client.get_workflow_handle(handle.id)
        described = await latest.describe()
        pending = [
            (a.activity_type.name, a.attempt, a.last_failure.message)
            for a in described.raw_description.pending_activities
        ]
        events = [event async for event in latest.fetch_history_events()]
        tail = [f"{e.event_id} {EventType.Name(e.event_type)}" for e in events[-15:]]
        return f"pending activities: {pending}\nlast events:\n" + "\n".join(tail)

    async def iam(self, email: str) -> IdentityView:
        """What the SCIM server really holds for this person."""
        readback = await self.tenant.read_identity(email, frozenset(ALL_GROUPS))
        return IdentityView(exists=readback.exists, active=readback.active, groups=set(readback.groups))

    def received(self, kind: str) -> list[EmailMessage]:
        """The emails of one kind as their recipients got them (the outbox folder's ``.eml`` files)."""
        parsed = [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default) for path in self.outbox_files()
        ]
        return [m for m in parsed if isinstance(m, EmailMessage) and m["X-Email-Kind"] == kind]

    def outbox_files(self) -> list[Path]:
        return sorted(self.outbox.glob("*.eml")) if self.outbox.exists() else []


async def eventually(check: Callable[[], Awaitable[Any]], what: str, within: float = 60) -> Any:
    """Wait (in real time, bounded) until ``check`` returns something truthy; return it."""
    deadline = asyncio.get_running_loop().time() + within
    while not (result := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.1)
    return result
