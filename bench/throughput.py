"""Full-lifecycle throughput on a Temporal dev server, the product against a bare workflow of its shape.

    python -m bench.throughput [--concurrent 10] [--rounds 3] [--storage memory sqlite] [--out r.json]

On one dev server (in memory, and again on a SQLite file), N engagements run contract to closed at
once on the product's worker process (real PostgreSQL, real SCIM, email to an outbox folder), with
durations of seconds (the dev server cannot skip time); then N bare workflows of the same shape
(bench/baseline.py: as many activities, timers, updates and children as the product's history, the
timers sharing out the product's own waits) on the bare worker process. Rounds alternate which side
goes first. Reported per side: lifecycles/s (N over the wall time of the batch) and the worker's
CPU-seconds per lifecycle (its process's CPU time over the batch, from /proc), medians of the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from temporalio.client import WorkflowHandle

from bench.baseline import BaselineShape
from bench.devstack import (
    POLL_SECONDS,
    Stack,
    add_worker_settings,
    client_tenants,
    cpu_seconds,
    engagement_spec,
    median,
    stack,
    worker_settings,
)
from bench.lifecycle import HistoryShape, history_of
from bench.peers import fresh_database, measure_and_emit, scim_server
from domain.commands import AnswerQuestion, AskQuestion
from domain.views import EngagementSummary
from domain.vocabulary import Phase
from tests.conftest import ScimServer

log = logging.getLogger("bench.throughput")

Storage = Literal["memory", "sqlite"]
NOTICE = timedelta(seconds=3)
TRANSITION = timedelta(seconds=6)
"""Long enough for the driver to see the transition and ask its question before the window closes."""
DURATIONS = {
    "notice_period": "PT3S",
    "transition_window": "PT6S",
    "handover_reminder_lead": "PT2S",
    "transition_closing_notice": "PT2S",
}
"""The product's durations, in seconds as the demo's are in minutes; the handover session is left out
(a session lasts at least a minute and must end before the end date)."""
WITHIN = 600.0


@dataclass
class Batch:
    side: str
    lifecycles: int
    seconds: float
    worker_cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.lifecycles / self.seconds

    @property
    def cpu_per_lifecycle(self) -> float:
        return self.worker_cpu_seconds / self.lifecycles


async def product_lifecycle(stack: Stack, tenant_url: str) -> WorkflowHandle[Any, Any]:
    """Contract to closed, as bench/lifecycle.py drives it, in real time: NDA signed, both checks
    cleared, notice, the five documents, the end date, a question asked and answered, closed."""
    harness = stack.driver
    handle = await harness.start(engagement_spec(tenant_url, **DURATIONS))
    await harness.drive_to(handle, Phase.NOTICE)
    await harness.hand_over(handle)
    await harness.settle(handle, Phase.TRANSITION, within=WITHIN)
    await harness.update(handle, AskQuestion(actor="lee", question_id="q1", text="Where is the DR plan?"))
    await harness.update(handle, AnswerQuestion(actor="fran", question_id="q1", answer="runbooks/dr"))
    summary = await handle.result()
    if not isinstance(summary, EngagementSummary) or summary.phase is not Phase.CLOSED:
        raise RuntimeError(f"the engagement did not close: {summary}")
    return handle


async def bare_lifecycle(stack: Stack, shape: BaselineShape) -> None:
    handle = await stack.start_bare(shape)
    result = asyncio.ensure_future(handle.result())
    while not result.done():  # status polled as the product's driver polls it
        await stack.bare_status(handle)
        await asyncio.wait([result], timeout=POLL_SECONDS)
    await result


async def batch(stack: Stack, side: str, runs: Sequence[Any]) -> Batch:
    """The lifecycles at once; wall time and the side's worker CPU time over them."""
    worker = stack.product if side == "product" else stack.bare
    assert worker.process is not None
    cpu = cpu_seconds(worker.process.pid)
    started = time.perf_counter()
    await asyncio.gather(*runs)
    seconds = time.perf_counter() - started
    return Batch(side, len(runs), seconds, cpu_seconds(worker.process.pid) - cpu)


async def product_batch(stack: Stack, scim: ScimServer, n: int) -> Batch:
    tenants = await client_tenants(scim, n)  # each engagement a client of its own, prepared untimed
    return await batch(stack, "product", [product_lifecycle(stack, url) for url in tenants])


async def measure_storage(
    storage: Storage, url: str, scim: ScimServer, folder: Path, args: argparse.Namespace
) -> dict[str, Any]:
    database_file = folder / "temporal.db" if storage == "sqlite" else None
    async with stack(url, folder / storage, database_file, worker_settings(args)) as running:
        # Warm-up (discarded): one lifecycle each; the product's history gives the bare shape.
        handle = await product_lifecycle(running, (await client_tenants(scim, 1))[0])
        history: HistoryShape = await history_of(handle)
        shape = history.baseline(
            timer_seconds=(NOTICE + TRANSITION).total_seconds() / max(history.timers, 1), timers_alongside=True
        )
        await bare_lifecycle(running, shape)
        log.info("%s: product shape %s; bare %s", storage, history, shape)
        rounds: list[tuple[Batch, Batch]] = []
        for number in range(args.rounds):
            if number % 2 == 0:
                product = await product_batch(running, scim, args.concurrent)
                bare = await batch(running, "bare", [bare_lifecycle(running, shape) for _ in range(args.concurrent)])
            else:
                bare = await batch(running, "bare", [bare_lifecycle(running, shape) for _ in range(args.concurrent)])
                product = await product_batch(running, scim, args.concurrent)
            log.info(
                "%s round %d: product %.2f/s %.2f cpu-s, bare %.2f/s %.2f cpu-s (load %.2f)",
                storage,
                number + 1,
                product.per_second,
                product.cpu_per_lifecycle,
                bare.per_second,
                bare.cpu_per_lifecycle,
                os.getloadavg()[0],
            )
            rounds.append((product, bare))
    return {
        "storage": storage,
        "concurrent": args.concurrent,
        "shape": asdict(history),
        "rounds": [{"product": asdict(p), "bare": asdict(b)} for p, b in rounds],
        "product_per_second": median([p.per_second for p, _ in rounds]),
        "bare_per_second": median([b.per_second for _, b in rounds]),
        "ratio": median([p.per_second / b.per_second for p, b in rounds]),
        "product_cpu_per_lifecycle": median([p.cpu_per_lifecycle for p, _ in rounds]),
        "bare_cpu_per_lifecycle": median([b.cpu_per_lifecycle for _, b in rounds]),
        "load": [round(x, 2) for x in os.getloadavg()],
    }


async def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    async with fresh_database(prefix="perf_throughput_") as url:
        with scim_server() as scim, tempfile.TemporaryDirectory(prefix="bench-throughput-") as folder:
            return [await measure_storage(storage, url, scim, Path(folder), args) for storage in args.storage]


def add_arguments(parser: argparse.ArgumentParser, concurrent: int = 10, rounds: int = 3) -> None:
    parser.add_argument("--concurrent", type=int, default=concurrent, help=f"lifecycles at once (default {concurrent})")
    parser.add_argument("--rounds", type=int, default=rounds, help=f"interleaved rounds (default {rounds})")
    parser.add_argument("--storage", nargs="+", choices=["memory", "sqlite"], default=["memory", "sqlite"])


def entrypoint() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.splitlines()[0])
    add_arguments(parser)
    add_worker_settings(parser)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    measure_and_emit(measure, parser.parse_args(sys.argv[1:]), log)


if __name__ == "__main__":
    entrypoint()
