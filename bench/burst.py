"""A burst of commands against one engagement in delivery: the longest run, against bare Temporal.

One engagement is brought to delivery on a Temporal dev server (real PostgreSQL, real SCIM, email to
an outbox folder, as the tests run it), then N commands are sent at once (a mix of ``AddEngineer``
and ``ChangeRole``, through ``workflows.commands.send``, which resends an update dropped with a
closing run). When the engagement has settled, every run of the workflow id is read (following the
continue-as-new chain, and counted by a visibility list too) and the longest run's event count is
reported with the number of runs. A bare workflow of the same shape (as many updates, each queuing
its share of as many no-op activities, performed one at a time, continuing as new between them when
the server suggests it or the bound is reached) takes the same burst on the same server, for
comparison. Nothing is asserted about time.

    python -m bench.burst                        # 1,500 commands, no bound of our own (the server's suggestion)
    python -m bench.burst --commands 300 --bound 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from adapters.db import EngagementStore, create_engine
from adapters.scim import ScimDirectory
from adapters.updates import refused_for_the_next_run
from bench.baseline import BurstBaselineWorkflow, BurstShape, Step, noop
from bench.peers import dev_server, fresh_database, measure_and_emit, scim_server
from domain.commands import AddEngineer, ChangeRole, Command
from domain.spec import EngineerSpec
from domain.vocabulary import Phase
from tests.conftest import ScimServer
from tests.helpers import Harness

log = logging.getLogger("bench.burst")

PER_RUN_LIMIT = 10_000
"""Issue 10's bound: no run of an engagement longer than this, under any burst."""
SETTLE_SECONDS = 1800.0


@dataclass
class RunHistory:
    run_id: str
    events: int
    activities: int
    updates: int


@dataclass
class Side:
    seconds: float
    runs: list[RunHistory]
    accepted: int
    refused: int
    listed_runs: int
    """How many runs a visibility list by workflow id names (eventually consistent; the chain is exact)."""

    @property
    def longest(self) -> int:
        return max(r.events for r in self.runs)

    def summary(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 2),
            "runs": len(self.runs),
            "listed_runs": self.listed_runs,
            "longest_run_events": self.longest,
            "events": sum(r.events for r in self.runs),
            "activities": sum(r.activities for r in self.runs),
            "updates_accepted": self.accepted,
            "updates_refused": self.refused,
            "per_run_events": [r.events for r in self.runs],
        }


async def runs_of(client: Client, workflow_id: str, first_run_id: str) -> tuple[list[RunHistory], int]:
    """Every run of the workflow, first to last, by its continue-as-new chain; and the listed count."""
    runs: list[RunHistory] = []
    run_id: str | None = first_run_id
    while run_id is not None:
        events = [e async for e in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events()]
        types = [e.event_type for e in events]
        runs.append(
            RunHistory(
                run_id=run_id,
                events=len(events),
                activities=types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
                updates=types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED),
            )
        )
        last = events[-1]
        continued = last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id if continued else None
    listed = 0
    with contextlib.suppress(RPCError):
        listed = len([w async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")])
    return runs, listed


# ==================================================================== (a) the product


def commands(n: int) -> list[Command]:
    """A third newcomers, two thirds role changes of one engineer back and forth (some refused as no change)."""
    burst: list[Command] = []
    for i in range(n):
        if i % 3 == 0:
            engineer = EngineerSpec(name=f"Burst {i}", email=f"b{i}@firm.example", role="analyst", jurisdiction="PT")
            burst.append(AddEngineer(actor="burst", engineer=engineer))
        else:
            burst.append(ChangeRole(actor="burst", email="carol@firm.example", role=("developer", "analyst")[i % 2]))
    return burst


SERVER_BUSY = (
    "limit on number of concurrent in-flight updates",
    "workflow update was aborted",
    "workflow is closing",
)
"""The server did not take the update (too many in flight, or the run closed before accepting it):
nothing was applied, so the bench sends it again, as a persistent client would. So is an update a
full run refused as ``ContinuingAsNew`` past ``adapters.updates.execute``'s own resends."""


async def send_all(calls: Sequence[Any], in_flight: int, within: float = SETTLE_SECONDS) -> tuple[int, int]:
    """Run the sends at most ``in_flight`` at a time, each resent while the server is busy; (accepted, refused)."""
    gate = asyncio.Semaphore(in_flight)
    outcome = [0, 0]
    reasons: dict[str, int] = {}
    resent = [0]
    deadline = time.monotonic() + within

    def count_refusal(error: Exception) -> None:
        cause = getattr(error, "cause", None) or error
        reason = f"{type(cause).__name__}: {getattr(cause, 'message', None) or cause}"[:80]
        reasons[reason] = reasons.get(reason, 0) + 1

    async def one(call: Any) -> None:
        async with gate:
            pause = 0.05
            while True:
                try:
                    await call()
                    outcome[0] += 1
                    return
                except RPCError as error:
                    if not any(m in error.message for m in SERVER_BUSY) or time.monotonic() > deadline:
                        raise
                    resent[0] += 1
                except WorkflowUpdateFailedError as error:
                    if not refused_for_the_next_run(error) or time.monotonic() > deadline:
                        outcome[1] += 1
                        count_refusal(error)
                        return
                    resent[0] += 1
                except Exception as error:  # a refusal by the validator: counted, not resent
                    outcome[1] += 1
                    count_refusal(error)
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)

    await asyncio.gather(*(one(c) for c in calls))
    log.info("sent %s, resent %s times while the server was busy, refused: %s", len(calls), resent[0], reasons)
    return outcome[0], outcome[1]


async def measure_product(
    env: WorkflowEnvironment, store: EngagementStore, scim: ScimServer, outbox: Path, args: argparse.Namespace
) -> Side:
    tenant = ScimDirectory(scim.tenant_url(f"burst{uuid.uuid4().hex[:12]}"))
    try:
        async with Harness.running(env.client, store, tenant, outbox) as harness:
            handle = await harness.start(harness.spec(), history_limit=args.bound)
            await harness.drive_to(handle, Phase.DELIVERY)
            log.info("engagement in delivery; sending %s commands", args.commands)
            started = time.perf_counter()
            burst = commands(args.commands)
            accepted, refused = await send_all([lambda c=c: harness.update(handle, c) for c in burst], args.in_flight)
            await harness.settle(handle, Phase.DELIVERY, within=SETTLE_SECONDS)
            seconds = time.perf_counter() - started
            assert handle.first_execution_run_id is not None
            runs, listed = await runs_of(env.client, handle.id, handle.first_execution_run_id)
    finally:
        await tenant.close()
    return Side(seconds, runs, accepted, refused, listed)


# ==================================================================== (b) bare Temporal


async def measure_baseline(client: Client, updates: int, activities: int, args: argparse.Namespace) -> Side:
    task_queue = f"burst-baseline-{uuid.uuid4().hex[:8]}"
    shape = BurstShape(updates=updates, activities=activities, bound=args.bound)
    async with Worker(client, task_queue=task_queue, workflows=[BurstBaselineWorkflow], activities=[noop]):
        handle: WorkflowHandle[Any, Any] = await client.start_workflow(
            BurstBaselineWorkflow.run, shape, id=f"burst-baseline-{uuid.uuid4().hex[:12]}", task_queue=task_queue
        )
        started = time.perf_counter()
        accepted, refused = await send_all(
            [lambda n=n: handle.execute_update(BurstBaselineWorkflow.command, Step(n)) for n in range(updates)],
            args.in_flight,
        )
        await handle.result()
        seconds = time.perf_counter() - started
    assert handle.first_execution_run_id is not None
    runs, listed = await runs_of(client, handle.id, handle.first_execution_run_id)
    return Side(seconds, runs, accepted, refused, listed)


# ==================================================================== the bench


@contextlib.asynccontextmanager
async def peers() -> AsyncIterator[tuple[WorkflowEnvironment, EngagementStore, ScimServer]]:
    """A Temporal dev server (a continue-as-new racing updates behaves as in production), a fresh
    migrated database (``perf_burst_…``) and the SCIM server."""
    async with fresh_database(prefix="perf_burst_") as url:
        engine = create_engine(url)
        try:
            with scim_server() as scim:
                async with dev_server() as env:
                    yield env, EngagementStore(engine), scim
        finally:
            await engine.dispose()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    async with peers() as (env, store, scim):
        with tempfile.TemporaryDirectory(prefix="perf-burst-outbox-") as folder:
            product = await measure_product(env, store, scim, Path(folder), args)
        log.info("product: %s", product.summary())
        activities = sum(r.activities for r in product.runs)
        baseline = await measure_baseline(env.client, product.accepted, activities, args)
        log.info("baseline: %s", baseline.summary())
    results = {
        "what": "a burst of commands in delivery: product (a) vs bare Temporal (b), Temporal dev server",
        "commands": args.commands,
        "in_flight": args.in_flight,
        "bound": args.bound,
        "per_run_limit": PER_RUN_LIMIT,
        "product": product.summary(),
        "baseline": baseline.summary(),
        "ratio_seconds": round(product.seconds / baseline.seconds, 2),
        "product_over_limit": product.longest > PER_RUN_LIMIT,
        "load": os.getloadavg(),
    }
    return results


def add_arguments(parser: argparse.ArgumentParser, commands: int = 1500) -> None:
    parser.add_argument("--commands", type=int, default=commands, help=f"commands in the burst (default {commands})")
    parser.add_argument(
        "--in-flight",
        type=int,
        default=10,
        help="sends outstanding at once (default 10, the server's limit per workflow)",
    )
    parser.add_argument("--bound", type=int, help="continue_as_new_after_events for both sides (default: none)")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    return parser.parse_args(argv)


def entrypoint() -> None:
    measure_and_emit(measure, parse_args(sys.argv[1:]), log)


if __name__ == "__main__":
    entrypoint()
