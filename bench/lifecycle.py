"""How much the engagement lifecycle costs on top of bare Temporal, measured on one test server.

    python -m bench.lifecycle [--runs N] [--out results.json]

Each run drives (a) one full engagement, contract to closed, against the real PostgreSQL and
scim2-server, as tests/test_lifecycle.py does, then (b) the baseline workflow (bench/baseline.py)
with an activity per side effect (a record_effects batch counted as its records) and as many timers
and updates as (a)'s history showed. Both run on the same
time-skipping test server, client and data converter; one warm-up run of each is discarded.
See bench/README.md for how to read the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from adapters.db import EngagementStore, create_engine
from adapters.scim import ScimDirectory
from bench.baseline import BASELINE_WORKFLOWS, BaselineShape, BaselineWorkflow, Step, noop
from bench.peers import fresh_database, run, scim_server
from bench.roundtrips import CountingProxy, counted
from domain.commands import AnswerQuestion, AskQuestion, RecordSessionHeld
from domain.views import EngagementSummary
from domain.vocabulary import Phase
from tests.conftest import ScimServer
from tests.helpers import Harness

log = logging.getLogger("bench.lifecycle")

TEST_SERVER = Path(sys.executable).parent / "temporal-test-server"


@dataclass
class HistoryShape:
    """What one workflow's history holds: the counts the baseline copies, and its size."""

    events: int
    activities: int
    timers: int
    updates: int
    workflow_tasks: int
    child_workflows: int
    side_effects: int = 0
    """Activities, a ``record_effects`` batch counted as its records: the lifecycle's side effects."""

    @classmethod
    def of(cls, events: Sequence[Any]) -> HistoryShape:
        types = [event.event_type for event in events]
        activities = types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        return cls(
            events=len(types),
            activities=activities,
            timers=types.count(EventType.EVENT_TYPE_TIMER_STARTED),
            updates=types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED),
            workflow_tasks=types.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
            child_workflows=types.count(EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED),
            side_effects=activities + sum(len(records) - 1 for records in batched_records(events)),
        )

    def baseline(self, **changes: Any) -> BaselineShape:
        """The bare workflow of this shape: an activity per side effect (as a plain Temporal workflow
        performs them: one record, email or IAM change each), as many timers, updates and children."""
        return BaselineShape(self.side_effects, self.timers, self.updates, self.child_workflows, **changes)


def batched_records(events: Sequence[Any]) -> list[list[Any]]:
    """The records of each ``record_effects`` activity the history scheduled (``batched-records``)."""
    return [
        json.loads(attributes.input.payloads[0].data)["records"]
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and (attributes := event.activity_task_scheduled_event_attributes).activity_type.name == "record_effects"
    ]


@dataclass
class Measurement:
    seconds: float
    history: HistoryShape


@dataclass
class Run:
    run: int
    product: Measurement
    baseline: Measurement

    @property
    def ratio(self) -> float:
        return self.product.seconds / self.baseline.seconds


async def history_of(handle: WorkflowHandle[Any, Any]) -> HistoryShape:
    return HistoryShape.of((await handle.fetch_history()).events)


# ==================================================================== (a) the product


async def drive_lifecycle(env: WorkflowEnvironment, harness: Harness) -> WorkflowHandle[Any, Any]:
    """Contract to closed, as tests/test_lifecycle.py drives it (without its assertions): NDA signed,
    both checks cleared, notice, the five documents, one session scheduled and held, the end date,
    one question asked and answered, the transition window over."""
    handle = await harness.start(harness.spec())
    view = await harness.drive_to(handle, Phase.NOTICE)
    assert view.timeline.notice_given_at is not None
    starts = view.timeline.notice_given_at + timedelta(days=20)
    await harness.hand_over(handle, starts)
    await env.sleep(timedelta(days=21))
    await harness.update(handle, RecordSessionHeld(actor="fran", session_id="s1"))
    await harness.settle(handle, Phase.NOTICE)
    await env.sleep(timedelta(days=40))  # past the end date (notice + 60 days): everything revoked
    await harness.settle(handle, Phase.TRANSITION)
    await harness.update(handle, AskQuestion(actor="lee", question_id="q1", text="Where is the DR plan?"))
    await harness.update(handle, AnswerQuestion(actor="fran", question_id="q1", answer="runbooks/dr"))
    await env.sleep(timedelta(days=31))  # past the transition window: the final sweep, then closed
    return handle


POLL_SECONDS = 0.01
"""How often the driver asks the engagement whether it settled: short, so that waiting on the
driver's side adds little to the product's measured time."""


async def measure_product(
    env: WorkflowEnvironment, store: EngagementStore, scim: ScimServer, outbox_root: Path
) -> Measurement:
    tenant = ScimDirectory(scim.tenant_url(f"bench{uuid.uuid4().hex[:12]}"))
    try:
        outbox = outbox_root / uuid.uuid4().hex[:8]
        async with Harness.running(env.client, store, tenant, outbox) as harness:
            harness.poll_seconds = POLL_SECONDS
            started = time.perf_counter()
            handle = await drive_lifecycle(env, harness)
            summary = await handle.result()
            seconds = time.perf_counter() - started
    finally:
        await tenant.close()
    if not isinstance(summary, EngagementSummary) or summary.phase is not Phase.CLOSED:
        raise RuntimeError(f"the engagement did not close: {summary}")
    return Measurement(seconds, await history_of(handle))


# ==================================================================== (b) the baseline


async def measure_baseline(client: Client, shape: BaselineShape) -> Measurement:
    task_queue = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=task_queue, workflows=BASELINE_WORKFLOWS, activities=[noop]):
        started = time.perf_counter()
        handle = await client.start_workflow(
            BaselineWorkflow.run, shape, id=f"baseline-{uuid.uuid4().hex[:12]}", task_queue=task_queue
        )
        for number in range(shape.updates):  # back to back: the driver does not wait on anything else
            await handle.execute_update(BaselineWorkflow.step, Step(number))
        done = await handle.result()
        seconds = time.perf_counter() - started
    if done != shape:
        raise RuntimeError(f"the baseline did {done}, not {shape}")
    return Measurement(seconds, await history_of(handle))


# ==================================================================== the bench


@contextlib.asynccontextmanager
async def peers(
    counter: list[CountingProxy] | None = None,
) -> AsyncIterator[tuple[WorkflowEnvironment, EngagementStore, ScimServer]]:
    """The time-skipping test server, a fresh migrated database, and the SCIM server, for all runs
    (with ``counter``, the product reaches the database through a counting proxy, appended to it)."""
    async with fresh_database() as url, contextlib.AsyncExitStack() as stack:
        if counter is not None:
            url, proxy = await stack.enter_async_context(counted(url))
            counter.append(proxy)
        engine = create_engine(url)
        try:
            with scim_server() as scim:
                env = await WorkflowEnvironment.start_time_skipping(
                    data_converter=pydantic_data_converter, test_server_existing_path=str(TEST_SERVER)
                )
                try:
                    yield env, EngagementStore(engine), scim
                finally:
                    await env.shutdown()
        finally:
            await engine.dispose()


async def one_run(
    number: int, env: WorkflowEnvironment, store: EngagementStore, scim: ScimServer, outbox_root: Path
) -> Run:
    product = await measure_product(env, store, scim, outbox_root)
    baseline = await measure_baseline(env.client, product.history.baseline())
    run = Run(number, product, baseline)
    log.info(
        "run %s: product %.2fs, baseline %.2fs, ratio %.1f",
        number or "warm-up",
        product.seconds,
        baseline.seconds,
        run.ratio,
    )
    return run


async def bench(runs: int) -> list[Run]:
    async with peers() as (env, store, scim):
        with tempfile.TemporaryDirectory(prefix="bench-outbox-") as folder:
            await one_run(0, env, store, scim, Path(folder))  # warm-up, discarded
            return [await one_run(n, env, store, scim, Path(folder)) for n in range(1, runs + 1)]


def medians(runs: list[Run]) -> dict[str, float]:
    def median(values: list[float]) -> float:
        return float(statistics.median(values))

    shapes = {"product": [r.product for r in runs], "baseline": [r.baseline for r in runs]}
    result = {"ratio": median([r.ratio for r in runs])}
    for side, measured in shapes.items():
        result[f"{side}_seconds"] = median([m.seconds for m in measured])
        for field in ("events", "activities", "side_effects", "timers", "updates", "workflow_tasks"):
            result[f"{side}_{field}"] = median([float(getattr(m.history, field)) for m in measured])
    return result


def table(runs: list[Run], middle: dict[str, float]) -> str:
    header = (
        "run",
        "product s",
        "baseline s",
        "ratio a/b",
        "events a/b",
        "activities",
        "effects",
        "timers",
        "updates",
        "wf tasks",
    )
    rows: list[tuple[str, ...]] = [
        (
            str(r.run),
            f"{r.product.seconds:.2f}",
            f"{r.baseline.seconds:.2f}",
            f"{r.ratio:.1f}",
            f"{r.product.history.events}/{r.baseline.history.events}",
            f"{r.product.history.activities}/{r.baseline.history.activities}",
            f"{r.product.history.side_effects}/{r.baseline.history.side_effects}",
            f"{r.product.history.timers}/{r.baseline.history.timers}",
            f"{r.product.history.updates}/{r.baseline.history.updates}",
            f"{r.product.history.workflow_tasks}/{r.baseline.history.workflow_tasks}",
        )
        for r in runs
    ]

    def pair(name: str) -> str:
        return f"{middle[f'product_{name}']:g}/{middle[f'baseline_{name}']:g}"

    rows.append(
        (
            "median",
            f"{middle['product_seconds']:.2f}",
            f"{middle['baseline_seconds']:.2f}",
            f"{middle['ratio']:.1f}",
            *(pair(name) for name in ("events", "activities", "side_effects", "timers", "updates", "workflow_tasks")),
        )
    )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def report(runs: list[Run]) -> dict[str, Any]:
    return {
        "what": "engagement lifecycle (a) vs bare-Temporal baseline (b), Temporal time-skipping test server",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "temporalio": version("temporalio"),
        },
        "warm_up_runs_discarded": 1,
        "runs": [{**asdict(r), "ratio": r.ratio} for r in runs],
        "medians": medians(runs),
    }


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs after one warm-up (default 5)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here (default: print only)")
    parser.add_argument(
        "--round-trips",
        action="store_true",
        help="count PostgreSQL round trips of one lifecycle (after a warm-up) instead of timing",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


async def round_trips() -> dict[str, float]:
    """One lifecycle (after a warm-up) with the product's database connections through a counting proxy."""
    proxies: list[CountingProxy] = []
    async with peers(proxies) as (env, store, scim):
        proxy = proxies[0]
        with tempfile.TemporaryDirectory(prefix="bench-outbox-") as folder:
            await measure_product(env, store, scim, Path(folder))  # warm-up: connections, prepared statements
            before, connections = proxy.round_trips, proxy.connections
            product = await measure_product(env, store, scim, Path(folder))
            trips = proxy.round_trips - before
    return {
        "round_trips": trips,
        "activities": product.history.activities,
        "round_trips_per_activity": round(trips / product.history.activities, 2),
        "new_connections": proxy.connections - connections,
    }


async def main(args: argparse.Namespace) -> int:
    if args.round_trips:
        print(json.dumps(await round_trips(), indent=2))
        return 0
    runs = await bench(args.runs)
    results = report(runs)
    print(table(runs, results["medians"]))
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"results written to {args.out}")
    return 0


def entrypoint() -> None:
    run(main, parse_args(sys.argv[1:]), log)


if __name__ == "__main__":
    entrypoint()
