"""The product and bare Temporal side by side on one dev server, each worker a process of its own.

A `Stack` is one Temporal dev server (in memory, or on a SQLite file), the product's ``worker.py``
and the bare worker (``bench/bare_worker.py``) as subprocesses on task queues of their own (so their
CPU time and memory are read from ``/proc`` apart from the bench's driver), and a driver `Harness`
on the product's task queue (it starts engagements, sends commands and reads ``status``; it runs no
worker). The fresh database and the SCIM server are shared by every stack of a bench run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from adapters.db import EngagementStore, create_engine
from adapters.outbox import OutboxStore
from adapters.scim import ScimDirectory
from bench.baseline import BaselineShape, BaselineWorkflow, Progress, Step
from bench.peers import dev_server
from cli.engagements import read_status
from domain.spec import EngagementSpec, parse_spec
from domain.views import StatusView
from tests.conftest import ScimServer
from tests.devserver import Cli, WorkerProcess, address
from tests.helpers import Harness
from tests.sample_spec import ALL_GROUPS, spec_data

T = TypeVar("T")

BARE_WORKER = ("-m", "bench.bare_worker")
POLL_SECONDS = 0.1
"""How often either driver asks its workflow for ``status`` while it waits (both sides alike)."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """The process's resident memory now, in MB (``VmRSS`` of ``/proc/PID/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(fraction * len(ordered)) - 1)]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


async def bounded(calls: Sequence[Callable[[], Awaitable[T]]], at_once: int) -> list[T]:
    """Run the calls, at most ``at_once`` at a time; their results in order."""
    gate = asyncio.Semaphore(at_once)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def client_tenants(scim: ScimServer, count: int) -> list[str]:
    """``count`` fresh tenants of the SCIM server (distinct client endpoints), the policy's groups
    created in each as the client's IAM owner would; their base URLs."""

    async def one() -> str:
        tenant = ScimDirectory(scim.tenant_url(f"c{uuid.uuid4().hex[:12]}"))
        try:
            for group in ALL_GROUPS:
                await tenant.create_group(group)
        finally:
            await tenant.close()
        return tenant.base_url

    return await bounded([one] * count, 8)


def engagement_spec(tenant_url: str, **durations: str) -> EngagementSpec:
    """The sample spec on this client's IAM, with engineers of their own (several engagements may share
    a client without sharing identities) and the given durations (ISO 8601, short ones allowed)."""
    tag = uuid.uuid4().hex[:8]
    data = spec_data(tenant_url, contract_id=f"BENCH-{tag}")
    for engineer in data["engineers"]:
        engineer["email"] = engineer["email"].replace("@", f".{tag}@")
    data.update(durations)
    return parse_spec(data, allow_short_durations=True)


def add_worker_settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--worker-env",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="settings for both workers (e.g. WORKER_MAX_CACHED_WORKFLOWS=200 SCIM_MAX_CLIENTS=16)",
    )


def worker_settings(args: argparse.Namespace) -> dict[str, str]:
    return dict(item.split("=", 1) for item in args.worker_env)


@dataclass
class Stack:
    env: WorkflowEnvironment
    driver: Harness
    product: WorkerProcess
    bare: WorkerProcess

    async def start_bare(self, shape: BaselineShape) -> WorkflowHandle[Any, Any]:
        """A bare workflow of this shape, its updates sent back to back as the product's commands are sent."""
        handle = await self.env.client.start_workflow(
            BaselineWorkflow.run, shape, id=f"bare-{uuid.uuid4().hex[:12]}", task_queue=self.bare.cli.task_queue
        )
        for number in range(shape.updates):
            await handle.execute_update(BaselineWorkflow.step, Step(number))
        return handle

    async def status(self, handle: WorkflowHandle[Any, Any]) -> StatusView:
        """``status`` as the CLI reads it: the run's memo when it keeps one (no replay), else the query."""
        return await read_status(self.env.client, handle.id)

    async def bare_status(self, handle: WorkflowHandle[Any, Any]) -> Progress:
        progress: Progress = await handle.query(BaselineWorkflow.status)
        return progress

    @staticmethod
    async def restart(worker: WorkerProcess) -> None:
        """The same worker stopped and started again: its workflow cache is empty."""
        await worker.stop()
        await worker.start()


@contextlib.asynccontextmanager
async def stack(
    database_url: str, folder: Path, database_file: Path | None = None, settings: dict[str, str] | None = None
) -> AsyncIterator[Stack]:
    """A dev server (in memory, or on ``database_file``) with both workers running on it; ``settings``
    (environment variables) go to both workers."""
    async with dev_server(database_file) as env:
        engine = create_engine(database_url)
        store = EngagementStore(engine)
        workers: list[WorkerProcess] = []
        try:
            for name, program in (("product", ("worker.py",)), ("bare", BARE_WORKER)):
                run_dir = folder / f"{name}-{uuid.uuid4().hex[:6]}"
                run_dir.mkdir(parents=True)
                cli = Cli(address(env), database_url, run_dir, task_queue=f"bench-{name}", extra=settings or {})
                worker = WorkerProcess(cli, program)
                workers.append(worker)
                await worker.start()
            product, bare = workers
            driver = Harness(
                env.client,
                store,
                OutboxStore(engine),
                ScimDirectory("http://127.0.0.1:9/unused"),
                folder,
                product.cli.task_queue,
                poll_seconds=POLL_SECONDS,
            )
            yield Stack(env, driver, product, bare)
        finally:
            for worker in workers:
                with contextlib.suppress(Exception):
                    await worker.stop()
            await engine.dispose()
