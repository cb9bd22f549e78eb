"""No run of an engagement grows much past its bound under a burst of commands (issue 10), and a full
run holds back neither a revocation nor the continue-as-new, whatever keeps an email in flight.

On the Temporal dev server (the time-skipping test server loses an update that races a
continue-as-new), with real PostgreSQL and SCIM; email through the SendGrid v3 peer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from adapters.db import EngagementStore
from adapters.email import SendGridSender
from adapters.scim import ScimDirectory
from adapters.updates import refused_for_the_next_run
from domain.commands import Ack, AddEngineer, Command, RequestAccessReview, RevokeAccessNow
from domain.spec import EngineerSpec
from domain.vocabulary import Phase
from tests.devserver import dev_server, requires_temporal
from tests.helpers import Harness, eventually
from tests.histories_io import closed_history, keep
from tests.sendgrid_peer import SendGridPeer
from workflows.commands import send
from workflows.engagement import EngagementWorkflow

RUN_EARLY = True  # one of the longest files: started first (tests/conftest.py)

__all__ = ["dev_server"]  # a fixture, imported for pytest

CAROL = "carol@firm.example"

BOUND = 150
PER_IAM_CHANGE = 5
"""The events of one engineer's IAM change: a timer (the unconfirmed-revocation alert), the activity's
three events, the timer cancelled."""
SLACK = 60
"""Past the bound beside the IAM pass in flight: workflow tasks, the effect and the alert in flight
(cancelled), the updates accepted in the task that found the run full, the continue-as-new."""
WITHIN = 120.0
"""A bound on each wait, for a clear failure instead of a hang; every wait ends on an event."""


def newcomer(n: int) -> EngineerSpec:
    return EngineerSpec(name=f"Burst {n}", email=f"burst{n}@firm.example", role="analyst", jurisdiction="PT")


async def runs(client: Client, handle: WorkflowHandle[Any, Any]) -> list[list[HistoryEvent]]:
    """Every run's events, first to last, by the continue-as-new chain."""
    found: list[list[HistoryEvent]] = []
    run_id = handle.first_execution_run_id
    while run_id is not None:
        events = [e async for e in client.get_workflow_handle(handle.id, run_id=run_id).fetch_history_events()]
        found.append(events)
        last = events[-1]
        continued = last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id if continued else None
    return found


def full_from(events: list[HistoryEvent]) -> int:
    """The index of the first workflow task that saw the run full (its history at the bound)."""
    started = EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    return next((i for i, e in enumerate(events) if e.event_type == started and e.event_id >= BOUND), len(events))


def activities(events: list[HistoryEvent]) -> dict[int, str]:
    """Each activity scheduled among ``events``: its scheduled event id and its name."""
    scheduled = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    return {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == scheduled
    }


def closed_activities(events: list[HistoryEvent]) -> set[int]:
    """The scheduled event ids of the activities that ended (completed, failed, cancelled, timed out)."""
    ended = {f"activity_task_{kind}_event_attributes" for kind in ("completed", "failed", "canceled", "timed_out")}
    closed = set()
    for e in events:
        kind = e.WhichOneof("attributes")
        if kind in ended:
            closed.add(getattr(e, kind).scheduled_event_id)
    return closed


def held_to_the_bound(events: list[HistoryEvent]) -> int:
    """Once full, the run starts no side effect (an IAM change only for a revocation taken while full:
    their number is returned) and ends with what was in flight."""
    full = full_from(events)
    before, after = events[:full], events[full:]
    started_after = list(activities(after).values())
    assert set(started_after) <= {"converge_access"}, f"started in a full run: {sorted(started_after)}"
    in_flight = {i: name for i, name in activities(before).items() if i not in closed_activities(before)}
    iam = sum(name == "converge_access" for name in in_flight.values()) + len(started_after)
    shown = ", ".join(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in after)
    assert len(after) <= PER_IAM_CHANGE * iam + SLACK, f"{len(events)} events, in flight {in_flight}: {shown}"
    return len(started_after)


async def persistently(handle: WorkflowHandle[Any, Any], command: Command) -> Ack:
    """Send until a run takes it, as a client that does not give up would (within WITHIN)."""
    deadline = asyncio.get_running_loop().time() + WITHIN
    while True:
        try:
            return await send(handle, command)
        except WorkflowUpdateFailedError as error:
            if not refused_for_the_next_run(error) or asyncio.get_running_loop().time() > deadline:
                raise


@requires_temporal
async def test_a_burst_over_a_small_bound_makes_no_long_run_and_applies_every_command_once(
    dev_server: WorkflowEnvironment, store: EngagementStore, tenant: ScimDirectory, tmp_path: Path
) -> None:
    async with Harness.running(dev_server.client, store, tenant, tmp_path) as harness:
        handle = await harness.start(harness.spec(), history_limit=BOUND)
        await harness.drive_to(handle, Phase.DELIVERY)
        gate = asyncio.Semaphore(10)  # the server's limit of updates in flight per workflow

        async def one(n: int) -> Ack:
            async with gate:
                return await persistently(handle, AddEngineer(actor="burst", engineer=newcomer(n)))

        burst = 60
        acks = await asyncio.gather(*(one(n) for n in range(burst)))
        assert all("added as analyst" in a.accepted for a in acks)
        view = await harness.settle(handle, Phase.DELIVERY, within=WITHIN)

        every_run = await runs(harness.client, handle)
        assert len(every_run) > 2 and view.runs == len(every_run)
        assert [held_to_the_bound(events) for events in every_run] == [0] * len(every_run)
        added = [e.email for e in view.engineers if e.email.startswith("burst")]
        assert sorted(added) == sorted(f"burst{n}@firm.example" for n in range(burst))
        audit = [e for e in await store.audit_entries(handle.id) if e.action == "engineer_added"]
        assert sorted(e.details["engineer"] for e in audit) == sorted(added)  # each applied once
        sent = [r for r in await harness.mail.outbox(handle.id) if r.kind == "engineer_added"]
        assert len(sent) == len({r.message_key for r in sent}) == burst * 3  # each told once, to three people
        for n in (0, burst - 1):
            assert (await harness.iam(f"burst{n}@firm.example")).groups == {"ticketing"}


async def _holding(peer: SendGridPeer) -> bool:
    return peer.held > 0


def message_key(request: Any) -> str:
    return str(request.payload["custom_args"]["message_key"])


async def full_and_holding(client: Client, workflow_id: str, peer: SendGridPeer) -> str | None:
    """The latest run's id once it found itself full (its lane asked to cancel the email in flight)
    while the email peer holds that send unanswered."""
    latest = client.get_workflow_handle(workflow_id)
    run_id = (await latest.describe()).run_id
    events = [e async for e in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events()]
    cancelled = any(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED for e in events)
    return run_id if cancelled and peer.held else None


@requires_temporal
async def test_an_email_held_in_flight_neither_holds_back_a_revocation_nor_the_continue_as_new(
    dev_server: WorkflowEnvironment, store: EngagementStore, tenant: ScimDirectory, tmp_path: Path
) -> None:
    with SendGridPeer() as peer:
        # The client would give up on SendGrid before the activity's 30 s start-to-close does.
        sender = SendGridSender(peer.api_key, "eo@firm.example", "EO", host=peer.host, timeout_seconds=25)
        async with Harness.running(dev_server.client, store, tenant, tmp_path, mailer=sender) as harness:
            handle = await harness.start(harness.spec(), history_limit=BOUND)
            await harness.drive_to(handle, Phase.DELIVERY)

            # SendGrid stops answering: the next email (a newcomer's announcement) stays in flight ...
            peer.hold_next(503)
            await send(handle, AddEngineer(actor="erin", engineer=newcomer(100)))
            await eventually(lambda: _holding(peer), "an email held in flight", WITHIN)
            gate = asyncio.Semaphore(10)

            async def one(n: int) -> Ack:
                async with gate:
                    return await persistently(handle, AddEngineer(actor="burst", engineer=newcomer(n)))

            burst = asyncio.gather(*(one(n) for n in range(30)))  # ... and a burst fills its run
            full_run = await eventually(
                lambda: full_and_holding(harness.client, handle.id, peer), "a full run held by the email", WITHIN
            )
            latest = harness.client.get_workflow_handle(handle.id)

            # Full: a command that does not end access is refused unapplied, for the next run ...
            try:
                await latest.execute_update(EngagementWorkflow.request_access_review, RequestAccessReview(actor="ian"))
            except WorkflowUpdateFailedError as error:
                assert refused_for_the_next_run(error)
            else:
                raise AssertionError("a full run took a command that does not end access")
            # ... an emergency revocation is taken and performed at once, the email still in flight.
            ack = await send(latest, RevokeAccessNow(actor="ciso", email=CAROL, reason="lost laptop"))
            assert "revoking" in ack.accepted

            async def carol_revoked() -> bool:
                identity = await harness.iam(CAROL)
                return not identity.active and not identity.groups

            await eventually(carol_revoked, "the revocation read back from SCIM while the run is full", 30)
            assert peer.held == 1 and (await latest.describe()).run_id == full_run

            # SendGrid answers (503) at last: the run continues as new, the next one sends the email.
            peer.release()
            await asyncio.wait_for(burst, WITHIN)
            await harness.settle(handle, Phase.DELIVERY, within=WITHIN)

            every_run = await runs(harness.client, handle)
            assert sum(held_to_the_bound(events) for events in every_run) == 1  # the revocation's IAM change
            [held] = [r for r in peer.requests if r.status == 503]
            accepted = [message_key(r) for r in peer.received]
            assert accepted.count(message_key(held)) == 1, "the email cancelled in flight, sent once next run"
            assert len(accepted) == len(set(accepted)), "every email sent once"
            sent = [r for r in await harness.mail.outbox(handle.id) if r.state == "sent"]
            assert {r.message_key for r in sent} == set(accepted)

            # The full run: the email cancelled in flight, a command refused, a revocation performed.
            await keep("burst_bound_full_run", await closed_history(harness.client, handle.id, run_id=full_run))
