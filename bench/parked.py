"""Engagements parked in delivery on a dev server: the worker's memory, the parking rate and `status`
latency, the product against bare workflows of the same shape.

    python -m bench.parked [--parked 1000] [--clients 100] [--at-once 10] [--queries 50] [--out r.json]

N engagements (the sample spec with its real durations, several per client: ``--clients`` distinct
SCIM endpoints, tenants of the scim2-server) are started and taken to delivery (NDA signed, both
checks cleared), ``--at-once`` at a time, on the product's worker process; N bare workflows of the
shape the first one's history had when it parked (bench/baseline.py, ``park``) on the bare worker
process. Parking goes in three interleaved rounds of N/3 per side (the rate is their median). Then,
per side: the worker's RSS (/proc) at the default cache size (WORKER_MAX_CACHED_WORKFLOWS), and
`status` answered for ``--queries`` engagements one after another (the product's as the CLI reads
it: from the run's memo, with no replay; the bare side's by its query), first the ones parked last (in
the worker's cache), then, after the worker is restarted, as many others (each one replayed from its
history: not in the cache), p50 and p95.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from bench.baseline import BaselineShape
from bench.devstack import (
    POLL_SECONDS,
    Stack,
    add_worker_settings,
    bounded,
    client_tenants,
    engagement_spec,
    median,
    percentile,
    rss_mb,
    stack,
    worker_settings,
)
from bench.lifecycle import history_of
from bench.peers import fresh_database, measure_and_emit, scim_server
from domain.vocabulary import Phase
from tests.devserver import WorkerProcess

log = logging.getLogger("bench.parked")
ROUNDS = 3
Park = Callable[[], Awaitable[WorkflowHandle[Any, Any]]]


@dataclass
class Side:
    name: str
    handles: list[WorkflowHandle[Any, Any]]
    rates: list[float]
    rss_empty_mb: float
    rss_parked_mb: float = 0.0
    cached_ms: tuple[float, float] = (0.0, 0.0)
    uncached_ms: tuple[float, float] = (0.0, 0.0)
    rss_by_parked: list[tuple[int, float]] = field(default_factory=list)
    """The worker's RSS after each round: (engagements parked so far, MB), to see whether it keeps growing."""

    def summary(self) -> dict[str, Any]:
        return {
            "parked": len(self.handles),
            "parking_rate_per_second": median(self.rates),
            "parking_rates": self.rates,
            "rss_empty_mb": round(self.rss_empty_mb, 1),
            "rss_parked_mb": round(self.rss_parked_mb, 1),
            "status_cached_p50_p95_ms": self.cached_ms,
            "status_uncached_p50_p95_ms": self.uncached_ms,
            "rss_by_parked_mb": self.rss_by_parked,
        }


def rss(worker: WorkerProcess) -> float:
    assert worker.process is not None
    return rss_mb(worker.process.pid)


async def park_product(stack: Stack, tenant_url: str) -> WorkflowHandle[Any, Any]:
    handle = await stack.driver.start(engagement_spec(tenant_url))
    await stack.driver.drive_to(handle, Phase.DELIVERY)
    return handle


async def park_bare(stack: Stack, shape: BaselineShape) -> WorkflowHandle[Any, Any]:
    handle = await stack.start_bare(shape)
    while True:  # polled as the product's driver polls
        if (await stack.bare_status(handle)).parked:
            return handle
        await asyncio.sleep(POLL_SECONDS)


async def timed(parks: Sequence[Park], at_once: int, side: Side, worker: WorkerProcess) -> None:
    started = time.perf_counter()
    side.handles += await bounded(parks, at_once)
    side.rates.append(len(parks) / (time.perf_counter() - started))
    side.rss_by_parked.append((len(side.handles), round(rss(worker), 1)))
    log.info(
        "%s: %d parked, %.2f/s, RSS %.0f MB (load %.2f)",
        side.name,
        len(side.handles),
        side.rates[-1],
        side.rss_by_parked[-1][1],
        os.getloadavg()[0],
    )


async def query_latencies(
    stack: Stack, side: Side, worker: WorkerProcess, ask: Callable[[WorkflowHandle[Any, Any]], Awaitable[Any]], k: int
) -> None:
    """``status`` of the last k parked (cached), then of k others after a restart (not cached)."""

    async def latencies(handles: Sequence[WorkflowHandle[Any, Any]]) -> tuple[float, float]:
        seconds = []
        for handle in handles:
            started = time.perf_counter()
            await ask(handle)
            seconds.append(time.perf_counter() - started)
        ms = [s * 1000 for s in seconds]
        return round(median(ms), 1), round(percentile(ms, 0.95), 1)

    side.cached_ms = await latencies(side.handles[-k:])
    await stack.restart(worker)
    await ask(side.handles[0])  # the first query of a fresh worker also loads its workflow code: not counted
    side.uncached_ms = await latencies(side.handles[1 : k + 1])


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    async with fresh_database(prefix="perf_parked_") as url:
        with scim_server() as scim, tempfile.TemporaryDirectory(prefix="bench-parked-") as folder:
            tenants = await client_tenants(scim, min(args.clients, args.parked))
            async with stack(url, Path(folder), settings=worker_settings(args)) as running:
                product = Side("product", [], [], rss(running.product))
                bare = Side("bare", [], [], rss(running.bare))
                first = await park_product(running, tenants[0])
                product.handles.append(first)
                shape = (await history_of(first)).baseline(park=True, timers_alongside=True)
                log.info("bare shape %s", shape)
                rounds = args.park_rounds
                chunk = max(1, (args.parked - 1) // rounds)
                for number in range(rounds):
                    count = chunk if number < rounds - 1 else args.parked - 1 - chunk * (rounds - 1)
                    offset = len(product.handles)
                    parks_product: list[Park] = [
                        functools.partial(park_product, running, tenants[n % len(tenants)])
                        for n in range(offset, offset + count)
                    ]
                    parks_bare: list[Park] = [functools.partial(park_bare, running, shape)] * (count + (number == 0))
                    sides: list[tuple[list[Park], Side, WorkerProcess]] = [
                        (parks_product, product, running.product),
                        (parks_bare, bare, running.bare),
                    ][: 1 if args.product_only else 2]
                    for parks, side, worker in sides if number % 2 == 0 else reversed(sides):
                        await timed(parks, args.at_once, side, worker)
                product.rss_parked_mb, bare.rss_parked_mb = rss(running.product), rss(running.bare)
                k = min(args.queries, args.parked - 1)
                await query_latencies(running, product, running.product, running.status, k)
                if not args.product_only:
                    await query_latencies(running, bare, running.bare, running.bare_status, k)
    return {
        "parked": args.parked,
        "clients": len(tenants),
        "shape": shape.__dict__,
        "product": product.summary(),
        "bare": None if args.product_only else bare.summary(),
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def add_arguments(parser: argparse.ArgumentParser, parked: int = 1000) -> None:
    parser.add_argument(
        "--parked",
        type=int,
        default=parked,
        help=f"engagements parked per side (default {parked}; 10000 for the issue)",
    )
    parser.add_argument("--clients", type=int, default=100, help="distinct client SCIM endpoints (default 100)")
    parser.add_argument("--at-once", type=int, default=10, help="engagements driven at once (default 10)")
    parser.add_argument("--queries", type=int, default=50, help="status queries per measure (default 50)")
    parser.add_argument(
        "--park-rounds",
        type=int,
        default=ROUNDS,
        help=f"rounds of parking, the RSS read after each (default {ROUNDS}; at least {ROUNDS} for a median rate)",
    )
    parser.add_argument(
        "--product-only",
        action="store_true",
        help="park the product's engagements only (its memory at a size the bare side would double the time of)",
    )


def entrypoint() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.parked", description=__doc__.splitlines()[0])
    add_arguments(parser)
    add_worker_settings(parser)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(sys.argv[1:])
    if args.park_rounds < 1 or args.parked < args.park_rounds + 1:
        parser.error("--park-rounds must be at least 1 and --parked more than it")
    measure_and_emit(measure, args, log)


if __name__ == "__main__":
    entrypoint()
