"""The benchmark suite: every target of issue 10, the bare Temporal shape and the project side by side.

    python -m bench                                    # every section, small sizes (several minutes)
    python -m bench --only throughput parked           # some sections
    python -m bench --parked 10000 --concurrent 20     # the issue's sizes

Each section is one of the modules beside this one (each runnable alone, with more options):
lifecycle (time-skipping test server), throughput (dev server, in memory and on SQLite), parked
(dev server), burst (dev server), revocation (dev server). One table at the end: target, bare,
project, their ratio, and the issue's target. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import burst, lifecycle, parked, revocation_latency, throughput
from bench.devstack import add_worker_settings
from bench.peers import run

log = logging.getLogger("bench")


@dataclass
class Row:
    target: str
    bare: float | None
    project: float
    issue: str
    unit: str = ""

    @property
    def ratio(self) -> float | None:
        return self.project / self.bare if self.bare else None

    def cells(self) -> tuple[str, ...]:
        def shown(value: float | None) -> str:
            if value is None:
                return "-"
            return (f"{value:,.0f}" if value >= 100 else f"{value:.3g}") + self.unit

        ratio = "-" if self.ratio is None else f"{self.ratio:.2f}x"
        return (self.target, shown(self.bare), shown(self.project), ratio, self.issue)


async def lifecycle_rows(args: argparse.Namespace) -> list[Row]:
    middle = lifecycle.medians(await lifecycle.bench(args.runs))
    return [Row("time-skipping lifecycle, s", middle["baseline_seconds"], middle["product_seconds"], "<= 1.5x", " s")]


async def throughput_rows(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    for result in await throughput.measure(args):
        storage, floor = result["storage"], "0.8x" if result["storage"] == "memory" else "0.9x"
        rows.append(
            Row(
                f"lifecycles/s, dev server {storage}, {args.concurrent} at once",
                result["bare_per_second"],
                result["product_per_second"],
                f">= {floor}",
            )
        )
        rows.append(
            Row(
                f"worker CPU-s per lifecycle, {storage}",
                result["bare_cpu_per_lifecycle"],
                result["product_cpu_per_lifecycle"],
                "(issue: 1.4 vs 0.22)",
            )
        )
    return rows


async def parked_rows(args: argparse.Namespace) -> list[Row]:
    result = await parked.measure(args)
    product, n = result["product"], result["parked"]
    bare: dict[str, Any] | None = result["bare"]  # none with --product-only

    def of_bare(key: str) -> Any:
        return None if bare is None else bare[key]

    return [
        Row(
            f"worker RSS, {n} parked", of_bare("rss_parked_mb"), product["rss_parked_mb"], "<= 200 MB at 10,000", " MB"
        ),
        Row("parking rate, per s", of_bare("parking_rate_per_second"), product["parking_rate_per_second"], ">= 0.8x"),
        *(
            Row(f"status p95, {label}", None if bare is None else bare[key][1], product[key][1], "<= 50 ms", " ms")
            for label, key in (("cached", "status_cached_p50_p95_ms"), ("not cached", "status_uncached_p50_p95_ms"))
        ),
    ]


async def burst_rows(args: argparse.Namespace) -> list[Row]:
    result = await burst.measure(args)
    return [
        Row(
            f"longest run, events, burst of {args.commands}",
            result["baseline"]["longest_run_events"],
            result["product"]["longest_run_events"],
            "<= 10,000",
        )
    ]


async def revocation_rows(args: argparse.Namespace) -> list[Row]:
    result = await revocation_latency.measure("email_down", args.trials)
    return [Row("revoke-now -> first IAM call, p95 (email down)", None, result["p95_ms"], "<= 100 ms idle", " ms")]


SECTIONS: dict[str, Callable[[argparse.Namespace], Awaitable[list[Row]]]] = {
    "lifecycle": lifecycle_rows,
    "throughput": throughput_rows,
    "parked": parked_rows,
    "burst": burst_rows,
    "revocation": revocation_rows,
}


def table(rows: list[Row]) -> str:
    header = ("target", "bare", "project", "project/bare", "issue's target")
    lines = [header, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    shown = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
    shown.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(shown)


async def main(args: argparse.Namespace) -> int:
    rows: list[Row] = []
    for name in args.only:
        log.info("section %s (load %.2f)", name, os.getloadavg()[0])
        rows += await SECTIONS[name](args)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n{table(rows)}\n\nload average at the end: {load}; {os.cpu_count()} CPUs")
    if args.out is not None:
        args.out.write_text(json.dumps([{**row.__dict__, "ratio": row.ratio} for row in rows], indent=2) + "\n")
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS), help="sections to run")
    parser.add_argument("--runs", type=int, default=3, help="time-skipping lifecycle runs (default 3)")
    throughput.add_arguments(parser, concurrent=5, rounds=3)
    parked.add_arguments(parser, parked=60)
    add_worker_settings(parser)
    burst.add_arguments(parser, commands=150)
    parser.add_argument("--trials", type=int, default=10, help="revocation trials (default 10)")
    parser.add_argument("--out", type=Path, help="write the table as JSON here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    run(main, parse_args(sys.argv[1:]), log)
